package starlarkrt

import (
	"context"
	"math"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/keyhole-dev/keyhole/hostops"
)

// ProcHost is the part of Host the proc module uses; *hostops.Host
// implements it.
type ProcHost interface {
	Exec(ctx context.Context, argv []string, opts hostops.ExecOptions) (hostops.ExecResult, error)
}

// procModule is the proc module: run an allow-listed program.
func procModule(r *run) *starlarkstruct.Module {
	return module("proc", map[string]func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error){
		"run": r.procRun,
	})
}

// proc.run(argv, timeout=None, stdin=None) runs argv[0] with the argument
// list argv, without a shell (hostops.Host.Exec: argv[0] is an absolute
// path or a name found in a fixed search path, its real path is what the
// policy sees as Command, the environment is a fixed minimal one). timeout
// is in seconds (default 60) and is cut short by the script's own
// wall-clock limit; when it passes the program and its process group are
// killed and the call fails with LIMIT_EXCEEDED. stdin is a string written
// to the program's standard input (default: none, /dev/null).
//
// It returns a struct: exit (the exit status, -1 if a signal ended the
// program), signal ("SIGKILL" or ""), stdout, stderr (each at most
// hostops.Host.MaxExecOutput bytes, 1 MiB by default), truncated (True
// when either was longer: the rest was dropped, not an error) and path
// (the real path that ran). A non-zero exit status is not an error.
func (r *run) procRun(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		argvV    starlark.Value
		timeoutV starlark.Value = starlark.None
		stdinV   starlark.Value = starlark.None
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "argv", &argvV, "timeout?", &timeoutV, "stdin?", &stdinV); err != nil {
		return nil, invalidArgument(b, err)
	}
	argv, err := argvList(b, "argv", argvV)
	if err != nil {
		return nil, err
	}
	var opts hostops.ExecOptions
	if opts.Timeout, err = timeoutArg(b, timeoutV); err != nil {
		return nil, err
	}
	if stdinV != starlark.None {
		s, ok := starlark.AsString(stdinV)
		if !ok {
			return nil, builtinError(b, hostops.KindInvalidArgument, "stdin must be a string or None, got %s", stdinV.Type())
		}
		opts.Stdin, opts.HasStdin = []byte(s), true
	}
	h, err := r.host(b)
	if err != nil {
		return nil, err
	}
	res, err := h.Exec(r.context(), argv, opts)
	if err != nil {
		return nil, err
	}
	return execStruct("proc_result", res, nil), nil
}

// context is the context of the script's host operations that wait.
func (r *run) context() context.Context {
	if r.ctx == nil {
		return context.Background()
	}
	return r.ctx
}

// execStruct makes the struct a program run returns, with extra fields.
func execStruct(name string, res hostops.ExecResult, extra starlark.StringDict) *starlarkstruct.Struct {
	d := starlark.StringDict{
		"exit":      starlark.MakeInt(res.Exit),
		"signal":    starlark.String(res.Signal),
		"stdout":    starlark.String(res.Stdout),
		"stderr":    starlark.String(res.Stderr),
		"truncated": starlark.Bool(res.Truncated),
		"path":      starlark.String(res.Path),
	}
	for k, v := range extra {
		d[k] = v
	}
	return starlarkstruct.FromStringDict(starlark.String(name), d)
}

// argvList unpacks a list or tuple of strings.
func argvList(b *starlark.Builtin, what string, v starlark.Value) ([]string, error) {
	var seq starlark.Indexable
	switch v := v.(type) {
	case *starlark.List:
		seq = v
	case starlark.Tuple:
		seq = v
	default:
		return nil, builtinError(b, hostops.KindInvalidArgument, "%s must be a list of strings, got %s", what, v.Type())
	}
	out := make([]string, seq.Len())
	for i := range out {
		s, ok := seq.Index(i).(starlark.String)
		if !ok {
			return nil, builtinError(b, hostops.KindInvalidArgument, "%s[%d] must be a string, got %s", what, i, seq.Index(i).Type())
		}
		out[i] = string(s)
	}
	return out, nil
}

// maxTimeout is the longest timeout a script may ask for; the script's
// wall-clock limit usually ends it sooner.
const maxTimeout = 24 * time.Hour

// timeoutArg converts a timeout in seconds (int or float, > 0; None for
// the default).
func timeoutArg(b *starlark.Builtin, v starlark.Value) (time.Duration, error) {
	if v == starlark.None {
		return 0, nil
	}
	f, ok := starlark.AsFloat(v)
	if !ok {
		return 0, builtinError(b, hostops.KindInvalidArgument, "timeout must be a number of seconds, got %s", v.Type())
	}
	if math.IsNaN(f) || f <= 0 || f > maxTimeout.Seconds() {
		return 0, builtinError(b, hostops.KindInvalidArgument, "timeout must be more than 0 and at most %d seconds, got %s", int(maxTimeout.Seconds()), v)
	}
	return time.Duration(f * float64(time.Second)), nil
}
