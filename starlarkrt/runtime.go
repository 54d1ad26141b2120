package starlarkrt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/keyhole-dev/keyhole/hostops"
)

// Default limits, used when an Options field is zero.
const (
	DefaultMaxSteps  = 10_000_000
	DefaultMaxWall   = 30 * time.Second
	DefaultMaxOutput = 16 << 20
)

// Host is the host layer a script reaches; *hostops.Host implements it.
type Host interface {
	FSHost
	ProcHost
	ServiceHost
	FactsHost
	PolicyHost
}

// Options configures one Run.
type Options struct {
	Host      Host
	Stdout    io.Writer // print output; nil discards
	MaxSteps  uint64
	MaxWall   time.Duration
	MaxOutput int64 // bytes written through print and fs.cat
	// Files, when set, sends fs.cat's files to the output without the
	// runtime reading them (the worker passes the descriptor to the
	// server); nil copies them to Stdout.
	Files hostops.FileSender
	// Args are the request's arguments, decoded from JSON (nil, bool,
	// float64/json.Number, string, []any, map[string]any); scripts see them
	// as the frozen dict "args".
	Args map[string]any
	// Counters, when set, are the byte budgets of Host's operations
	// (hostops.Host.Counters): once one is spent the script ends with
	// its LIMIT_EXCEEDED, which catch does not catch.
	Counters *hostops.Counters

	// setup, when set, is called with the script's thread before it runs
	// (tests: starlarktest's reporter).
	setup func(*starlark.Thread)
}

// Result is the outcome of one script.
type Result struct {
	Exit int
	Err  *Error // nil when Exit is 0
	// Value is what the script passed to result(), as JSON-ready Go
	// values (nil, bool, int64, float64, string, []any, map[string]any);
	// nil if it never called result().
	Value    any
	Steps    uint64
	Duration time.Duration
}

// Dialect returns the file options of keyhole scripts: programs, not
// configuration, so top-level control flow, while, set and global
// reassignment are on; recursion stays off.
func Dialect() *syntax.FileOptions {
	return &syntax.FileOptions{
		Set:             true,
		While:           true,
		TopLevelControl: true,
		GlobalReassign:  true,
		Recursion:       false,
	}
}

// ScriptSHA256 is the hex SHA-256 of a script's source, as audited.
func ScriptSHA256(src string) string {
	sum := sha256.Sum256([]byte(src))
	return hex.EncodeToString(sum[:])
}

// run holds the state of one script run. Its fields are owned by the
// goroutine running the script, except stop, which the watchdog goroutine
// also writes, under mu.
type run struct {
	opts   Options
	thread *starlark.Thread
	out    *limitWriter
	// ctx ends when the script must stop (wall-clock limit, session end);
	// builtins that wait (proc.run, svc.*) stop with it.
	ctx context.Context
	// value is the last value given to result() (result.go); setupErr
	// stops the script before it starts (args that cannot be converted).
	value    any
	setupErr *Error

	mu   sync.Mutex
	stop *Error // why the thread was cancelled, if it was
}

func (r *run) cancel(e *Error) {
	r.mu.Lock()
	if r.stop == nil {
		r.stop = e
	}
	r.mu.Unlock()
	r.thread.Cancel(e.Message)
}

func (r *run) stopped() *Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop == nil {
		if e := r.opts.Counters.Exceeded(); e != nil {
			r.stop = fromHostError(e)
			r.thread.Cancel(e.Message)
		}
	}
	return r.stop
}

// Run executes src as a keyhole script. It always returns a Result.
func Run(ctx context.Context, filename, src string, opts Options) Result {
	return run1(ctx, filename, src, opts, nil)
}

// run1 is Run with extra predeclared names (the tests' assert module).
func run1(ctx context.Context, filename, src string, opts Options, extra starlark.StringDict) (res Result) {
	if opts.MaxSteps == 0 {
		opts.MaxSteps = DefaultMaxSteps
	}
	if opts.MaxWall == 0 {
		opts.MaxWall = DefaultMaxWall
	}
	if opts.MaxOutput == 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	start := time.Now()
	r := &run{opts: opts}
	r.thread = &starlark.Thread{Name: filename, Load: nil}
	r.out = &limitWriter{w: opts.Stdout, left: opts.MaxOutput}
	r.thread.Print = func(_ *starlark.Thread, msg string) {
		if err := r.out.writeLine(msg); err != nil {
			r.cancel(&Error{Kind: hostops.KindLimitExceeded, Message: fmt.Sprintf("output limit of %d bytes exceeded", opts.MaxOutput)})
		}
	}
	if opts.setup != nil {
		opts.setup(r.thread)
	}
	r.thread.SetMaxExecutionSteps(opts.MaxSteps)
	r.thread.OnMaxSteps = func(*starlark.Thread) {
		r.cancel(&Error{Kind: hostops.KindLimitExceeded, Message: fmt.Sprintf("step limit of %d exceeded", opts.MaxSteps)})
	}

	ctx, cancel := context.WithTimeout(ctx, opts.MaxWall)
	defer cancel()
	r.ctx = ctx
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				r.cancel(&Error{Kind: hostops.KindLimitExceeded, Message: fmt.Sprintf("wall-clock limit of %s exceeded", opts.MaxWall)})
			} else {
				r.cancel(&Error{Kind: KindInternal, Message: "session ended"})
			}
		case <-done:
		}
	}()

	defer func() {
		res.Steps = r.thread.ExecutionSteps()
		res.Duration = time.Since(start)
		res.Value = r.value
		if p := recover(); p != nil {
			res.Err = &Error{Kind: KindInternal, Message: fmt.Sprintf("interpreter panic: %v", p)}
			res.Exit = ExitInternal
		}
	}()

	names := predeclared(r)
	for k, v := range extra {
		names[k] = v
	}
	if r.setupErr != nil {
		return Result{Exit: exitFor(r.setupErr.Kind), Err: r.setupErr}
	}
	err := execProgram(r.thread, filename, src, names)
	if err == nil {
		if e := r.stopped(); e != nil {
			return Result{Exit: exitFor(e.Kind), Err: e} // a budget spent by an operation that succeeded
		}
		return Result{Exit: ExitOK}
	}
	e := r.classify(err)
	return Result{Exit: exitFor(e.Kind), Err: e}
}

// classify turns the error that ended a script into its Error.
func (r *run) classify(err error) *Error {
	if e := r.stopped(); e != nil {
		return e
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return &Error{Kind: KindSyntaxError, Message: se.Error()}
	}
	var el resolve.ErrorList
	if errors.As(err, &el) {
		return &Error{Kind: KindSyntaxError, Message: err.Error()}
	}
	if e := fromHostError(err); e != nil {
		return e
	}
	return &Error{Kind: KindScriptError, Message: evalMessage(err)}
}

// limitWriter writes print output until its byte budget is spent.
type limitWriter struct {
	w    io.Writer
	left int64
	err  error
}

var errOutputLimit = errors.New("output limit exceeded")

func (l *limitWriter) writeLine(msg string) error {
	if l.err != nil {
		return l.err
	}
	n := int64(len(msg)) + 1
	if n > l.left {
		l.err = errOutputLimit
		return l.err
	}
	l.left -= n
	if _, err := io.WriteString(l.w, msg+"\n"); err != nil {
		l.err = err
		return err
	}
	return nil
}

// execProgram compiles src, refusing load statements at compile time so a
// script that uses load() is a syntax error rather than a failure half-way,
// and runs it.
func execProgram(thread *starlark.Thread, filename, src string, names starlark.StringDict) error {
	f, prog, err := starlark.SourceProgramOptions(Dialect(), filename, src, names.Has)
	if err != nil {
		return err
	}
	for _, stmt := range f.Stmts {
		if load, ok := stmt.(*syntax.LoadStmt); ok {
			return syntax.Error{Pos: load.Load, Msg: "load() is not available in keyhole scripts"}
		}
	}
	_, err = prog.Init(thread, names)
	return err
}
