//go:build linux

package hostops

// Running a program: the argument vector checked, argv[0] found and pinned,
// the pinned program's real path authorized as Command with the argument
// vector in context, and the pinned file itself executed (spawn_linux.go).

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyhole-dev/keyhole/authz"
	"golang.org/x/sys/unix"
)

const actionExec = "exec"

// ExecSearchPath is where a program named without a slash is looked for,
// in order. It is fixed: neither the server's nor the client's environment
// changes it.
const ExecSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ExecEnv returns the whole environment of every program Exec and Service
// run (a new slice each call: nothing can change what the next program
// gets).
func ExecEnv() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/"}
}

// Limits of Exec.
const (
	// DefaultExecTimeout is the timeout of a program run when its caller
	// sets none.
	DefaultExecTimeout = 60 * time.Second
	// DefaultMaxExecOutput is the default of Host.MaxExecOutput: 1 MiB.
	DefaultMaxExecOutput int64 = 1 << 20
	// MaxExecArgs is the most elements an argument vector may have.
	MaxExecArgs = 4096
	// MaxExecArgvBytes is the most bytes all arguments together may hold.
	MaxExecArgvBytes = 256 << 10
)

// ExecOptions are the optional inputs of Exec and Service.
type ExecOptions struct {
	// Timeout bounds the run; when it passes, the program's process group
	// is killed and the run is LIMIT_EXCEEDED. Zero means
	// DefaultExecTimeout.
	Timeout time.Duration
	// Stdin, when HasStdin is set, is written to the program's standard
	// input, which is then closed. Otherwise standard input is /dev/null.
	Stdin    []byte
	HasStdin bool
}

// ExecResult is the outcome of a program that ran (or, on a dry run, would
// have run).
type ExecResult struct {
	Path   string // real path of the program that ran (the Command authorized)
	Exit   int    // exit status; -1 when a signal ended it
	Signal string // the signal that ended it ("SIGSEGV"), or ""
	Stdout []byte // at most Host.MaxExecOutput bytes
	Stderr []byte // at most Host.MaxExecOutput bytes
	// Truncated reports that stdout or stderr was longer than the cap; the
	// rest was read and dropped.
	Truncated bool
}

// Exec runs the program argv[0] with the argument vector argv (action
// "exec"), without a shell.
//
// argv[0] is an absolute path, or a name without a slash that is looked
// up in ExecSearchPath (never in an environment's PATH); "./x" and "bin/x"
// are INVALID_ARGUMENT. The program is pinned (symlinks followed) and its
// real path authorized as Command::"<real path>", with context.argv the
// vector as JoinArgv spells it — its first element being the absolute path
// the program was named by, which is also the argv[0] the program gets —
// and context.args the set of the other elements. An argument holding a
// control character or invalid UTF-8 is INVALID_ARGUMENT. The file that
// runs is the pinned one, executed through its descriptor, so a symlink or
// a name swapped after authorization cannot redirect it.
//
// The program runs with ExecEnv as its whole environment, "/" as its
// working directory, in a process group of its own, with standard input
// from opts. When it exits, whatever is left of its process group is
// killed; on timeout or when ctx ends, the whole group is killed and the
// result is LIMIT_EXCEEDED. A process that left the group (setsid, a
// daemon) escapes that kill; in a process that called AdoptOrphans (the
// worker) it is this process's child by then, and Sweep kills and reaps
// it, and all it started, before Exec returns.
// A non-zero exit status is not an error. On a dry run an allowed program
// is not run: the result has exit status 0 and no output.
func (h *Host) Exec(ctx context.Context, argv []string, opts ExecOptions) (ExecResult, error) {
	var (
		t   target
		vec []string
	)
	_, e := h.run(operation{
		action: actionExec,
		arg:    shownArg0(argv),
		check: func() *Error {
			if msg := checkArgv(argv); msg != "" {
				return execInput(argv, KindInvalidArgument, msg)
			}
			return nil
		},
		resolve: func() (subject, *Error) {
			name, kind, msg := lookPath(argv[0])
			if msg != "" {
				return subject{}, execInput(argv, kind, msg)
			}
			vec = append([]string{name}, argv[1:]...)
			var err error
			if t, err = resolve(name); err != nil {
				return subject{}, sysError(actionExec, name, err)
			}
			return h.programSubject(actionExec, t, vec), nil
		},
	})
	if e != nil {
		return ExecResult{}, e
	}
	defer t.obj.close()
	if testHookExecAuthorized != nil {
		testHookExecAuthorized(t.name)
	}
	if h.DryRun {
		return ExecResult{Path: t.name}, nil
	}
	return h.spawn(ctx, t.obj, vec, opts, actionExec, t.name)
}

// testHookExecAuthorized, when set (by tests only), runs between the
// authorization of a program and its start.
var testHookExecAuthorized func(path string)

// programSubject is the program t names, run with the argument vector
// vec: a Command, decided with vec in the request's context.
func (h *Host) programSubject(action string, t target, vec []string) subject {
	c := *h // the request's context, with this vector in it
	c.Context.Argv, c.Context.Args = JoinArgv(vec), vec[1:]
	s := subject{action: action, name: t.name, asker: &c, unnamed: notNamed(t.err),
		res: authz.Resource{Kind: authz.KindCommand, Path: t.name}}
	if t.obj != nil {
		s.close = t.obj.close
	}
	s.unfit = func() *Error {
		if t.err != nil {
			return sysError(action, t.name, t.err)
		}
		if msg := refuseExec(&t.obj.st); msg != "" {
			return opError(KindInvalidArgument, action, t.name, msg)
		}
		return nil
	}
	return s
}

// execInput is the error of an argument vector refused before its
// program is pinned, "exec: <msg>", naming the program as given.
func execInput(argv []string, kind, msg string) *Error {
	return &Error{Kind: kind, Message: actionExec + ": " + msg, Action: actionExec, Resource: shownArg0(argv)}
}

// shownArg0 is how a refused argument vector appears as the resource of
// its error and audit line: the program name as given, cut short.
func shownArg0(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	return shorten(argv[0])
}

// checkArgv returns why argv cannot be run as given, or "".
func checkArgv(argv []string) string {
	switch {
	case len(argv) == 0:
		return "argv must not be empty"
	case len(argv) > MaxExecArgs:
		return "argv has more than " + strconv.Itoa(MaxExecArgs) + " elements"
	case argv[0] == "":
		return "argv[0] must not be empty"
	}
	total := 0
	for i, a := range argv {
		total += len(a) + 1
		if total > MaxExecArgvBytes {
			return "argv is longer than " + strconv.Itoa(MaxExecArgvBytes) + " bytes"
		}
		if !utf8.ValidString(a) {
			return fmt.Sprintf("argv[%d] is not valid UTF-8", i)
		}
		for _, r := range a {
			if unicode.IsControl(r) {
				return fmt.Sprintf("argv[%d] holds the control character %U", i, r)
			}
		}
	}
	return ""
}

// lookPath returns the absolute path program names: itself if absolute,
// else the first regular file of that name in ExecSearchPath. kind and msg
// say why there is none.
func lookPath(program string) (path, kind, msg string) {
	if strings.HasPrefix(program, "/") {
		if m := checkPath(program); m != "" {
			return "", KindInvalidArgument, m
		}
		return program, "", ""
	}
	if strings.Contains(program, "/") || program == "." || program == ".." {
		return "", KindInvalidArgument, "program must be an absolute path or a name without a slash, got " + strconv.Quote(program)
	}
	for _, dir := range strings.Split(ExecSearchPath, ":") {
		p := dir + "/" + program
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0 {
			return p, "", ""
		}
	}
	return "", KindNotFound, strconv.Quote(program) + " not found in " + ExecSearchPath
}

// refuseExec says why a pinned object will not be executed, or "".
func refuseExec(st *unix.Stat_t) string {
	if msg := notRegular(st); msg != "" {
		return msg
	}
	if st.Mode&0o111 == 0 {
		return "is not executable"
	}
	return ""
}

// JoinArgv spells an argument vector as context.argv holds it: the
// elements joined by single spaces, each one that is empty or holds
// whitespace, a quote or a backslash written in double quotes with `"` and
// `\` escaped by a backslash. Two different vectors never give the same
// string. Exec refuses vectors with control characters before they get
// here.
func JoinArgv(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if !needsQuotes(a) {
			b.WriteString(a)
			continue
		}
		b.WriteByte('"')
		for i := 0; i < len(a); i++ { // bytes: invalid UTF-8 is kept as is
			if a[i] == '"' || a[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(a[i])
		}
		b.WriteByte('"')
	}
	return b.String()
}

func needsQuotes(a string) bool {
	if a == "" {
		return true
	}
	for _, r := range a {
		if unicode.IsSpace(r) || r == '"' || r == '\'' || r == '\\' {
			return true
		}
	}
	return false
}
