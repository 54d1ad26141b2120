package worker

// The server's end of a worker process: every script runs in a worker process (DESIGN.md,
// "Worker process per script"). Pool.Run sends the Start message, writes
// the audit events the worker reports, forwards its output, enforces the
// wall-clock and memory limits from outside, and decides how the script
// ended, even when the worker crashes or is killed.
//
// Goroutines of one run: the caller's goroutine (Pool.Run: owns
// the timers and decides the end), one writing the Start message, one
// reading the worker's messages (owns the counters and the consumer end
// of the decision ring until it finishes; writes a Confirm for each
// AuditSync or Sync once the lines are written; Start and Confirms share
// one workerproto.Writer), one draining stderr, and one waiting for the
// process. Run returns only after the reader has seen the end of
// the pipe and has emptied the ring once more, so every
// decision the worker sent or put is logged before the caller learns the
// script's end.
//
// The decision ring (workerproto.Ring, a shared-memory file the server
// makes per worker and passes as descriptor 3) carries the worker's
// decisions without a system call per operation. The reader takes its
// records out, in order, before it handles any message from the worker
// (so a decision made before a print is logged, and streamed, before the
// print is forwarded, and a Sync is confirmed only once every line before
// it is written), whenever the pipe has been quiet for memPoll (so lines
// stay timely while a script computes), and Run takes what is left
// once the worker is gone, killed or not.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/outcome"
)

// The server's margins around a worker's limits.
const (
	// wallGrace is how long past MaxWall the server waits for the worker's
	// own result before killing it; cancelGrace the same after the
	// caller's context ended.
	wallGrace   = 5 * time.Second
	cancelGrace = 2 * time.Second
	// drainGrace is how long the server keeps reading the worker's pipes
	// after the process is gone (a descendant may still hold them).
	drainGrace = 2 * time.Second
	// memPoll is how often the worker's resident memory is checked.
	memPoll = 20 * time.Millisecond
	// stderrKeep is how much of a worker's stderr is kept for its log line.
	stderrKeep = 16 << 10
)

// Command returns a Config.Command that runs the program at path
// (absolute, so PATH plays no part) with the argument vector args, args[0]
// being argv[0]: Command(exe, "keyhole", "worker").
func Command(path string, args ...string) func() *exec.Cmd {
	args = append([]string(nil), args...)
	return func() *exec.Cmd {
		return &exec.Cmd{Path: path, Args: append([]string(nil), args...)}
	}
}

// End is how a script ended, as both wire protocols report it.
type End struct {
	Exit         int
	Err          *outcome.Error
	Value        json.RawMessage // nil when the script set no result
	Steps        uint64
	Duration     time.Duration
	BytesRead    int64
	BytesWritten int64
	Allowed      int
	Denied       int
	// Cancelled is set when the caller's context ended while the script
	// ran: the end may be the script's reaction to being stopped (an
	// operation cut short) rather than its own.
	Cancelled bool
}

// EndWith is an End with exit status exit and an error of kind.
func EndWith(exit int, kind, msg string) *End {
	return &End{Exit: exit, Err: &outcome.Error{Kind: kind, Message: msg}}
}

// worker is one started worker process.
type worker struct {
	cmd    *exec.Cmd
	stdin  *os.File // write end of the worker's stdin
	stdout *os.File // read end of the worker's stdout
	stderr *os.File // read end of the worker's stderr
	// ring is the server's mapping of the worker's decision ring; the
	// worker's end is descriptor 3. Unmapped once the worker is done
	// (Run, discard).
	ring *workerproto.Ring
	// fds is the server's end of the worker's descriptor socket (the
	// worker's is descriptor 4), on which fs.cat passes open files
	// (workerproto.Cat).
	fds *os.File
	// policyVersion is the policy set the worker preloaded while idle
	// (Pool.preload) or loaded for its last script, or "".
	policyVersion string

	// waitDone is closed once the process has been waited for, waitErr
	// then holding how it ended. mu guards dead: set once the process has
	// exited and before it is reaped, so that kill, which holds mu, never
	// signals a pid or group that may have been reused.
	waitDone chan struct{}
	waitErr  error
	mu       sync.Mutex
	dead     bool
	// stderrHead keeps the head of the worker's stderr, for the reason of
	// a crash; errDone is closed when stderr ends.
	stderrHead *headBuffer
	errDone    chan struct{}
	// runs counts the scripts it ran; parkTimer ends it while parked
	// (reuse.go).
	runs      int
	parkTimer *time.Timer
}

// start starts a worker with its hygiene: its own process group,
// SIGKILL when the server dies, cwd "/", only the three pipes and the
// decision ring (descriptor 3) as descriptors, and no environment beyond
// what the command sets itself.
func (p *Pool) start() (*worker, error) {
	if p.cfg.Command == nil {
		return nil, errors.New("worker: no worker command configured")
	}
	cmd := p.cfg.Command()
	if cmd == nil || cmd.Path == "" {
		return nil, errors.New("worker: worker command is empty")
	}
	if cmd.Env == nil {
		cmd.Env = []string{} // nil would inherit the server's environment
	}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	ringFile, err := workerproto.NewRingFile(0)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	defer ringFile.Close() // the mapping and the child's descriptor outlive it
	ring, err := workerproto.MapRing(ringFile)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	fdsServer, fdsWorker, err := workerproto.NewFDSocket()
	if err != nil {
		_ = ring.Unmap()
		return nil, fmt.Errorf("worker: %w", err)
	}
	// The child has its own copy of the worker's end once started.
	defer fdsWorker.Close()
	cmd.ExtraFiles = []*os.File{ringFile, fdsWorker} // workerproto.RingFD, FDSocketFD
	var files []*os.File
	pipe := func() (r, w *os.File) {
		if err != nil {
			return nil, nil
		}
		r, w, err = os.Pipe()
		files = append(files, r, w)
		return r, w
	}
	inR, inW := pipe()
	outR, outW := pipe()
	errR, errW := pipe()
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	if err != nil {
		closeAll()
		_ = fdsServer.Close()
		_ = ring.Unmap()
		return nil, fmt.Errorf("worker: pipes: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		closeAll()
		_ = fdsServer.Close()
		_ = ring.Unmap()
		return nil, fmt.Errorf("worker: start: %w", err)
	}
	// The child has its ends; the server keeps only its own.
	_ = inR.Close()
	_ = outW.Close()
	_ = errW.Close()
	w := &worker{cmd: cmd, stdin: inW, stdout: outR, stderr: errR, ring: ring, fds: fdsServer,
		waitDone: make(chan struct{}), stderrHead: &headBuffer{max: stderrKeep}, errDone: make(chan struct{})}
	go w.wait()
	go func() { defer close(w.errDone); _, _ = io.Copy(w.stderrHead, w.stderr) }()
	return w, nil
}

// wait waits for the process to exit, marks it dead, then reaps it.
func (w *worker) wait() {
	pid := w.cmd.Process.Pid
	var info unix.Siginfo
	for {
		// WNOWAIT leaves it a zombie: its pid and group stay its own
		// until the reap below.
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	w.mu.Lock()
	w.dead = true
	w.mu.Unlock()
	w.waitErr = w.cmd.Wait()
	close(w.waitDone)
}

// gone reports whether the process has exited.
func (w *worker) gone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dead
}

// kill ends the worker and everything in its process group, unless it
// has exited already (its pid and group may then be reused).
func (w *worker) kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead {
		return
	}
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	_ = w.cmd.Process.Kill()
}

// rss returns the worker's resident memory in bytes, or -1.
func (w *worker) rss() int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(w.cmd.Process.Pid) + "/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

// RunOptions are what Run needs besides the Start message.
type RunOptions struct {
	// Template holds every field of a decision line but the decision's
	// own (who, where, under which policy, the script's hash): the worker
	// supplies only what each operation decided.
	Template audit.Event
	// Policy is the set st names by its version (required); its files are
	// sent with st unless the worker preloaded that version.
	Policy *authz.PolicySet
	// Print gets each print call's bytes, newline included, in order.
	Print func([]byte) error
	// Decision, if set, gets each decision line once it is in the audit
	// log, in order with Print.
	Decision func(audit.Event)
	// Log is the run's log; nil means Config.Log.
	Log logrus.FieldLogger
	// Cat, if set, streams the bytes of one fs.cat (r, at most what the
	// limits allow of the file at path) to the client and returns how many
	// it sent; called from the reading goroutine, in order with Print.
	// Nil sends them through Print.
	Cat func(r io.Reader, path string) (int64, error)
	// Stuck, if set, is called when the worker is gone but its output has
	// not been read to its end drainGrace later (a descendant holds the
	// pipe, or a Print is blocked on a client that does not read): Run
	// closes the pipe, and Stuck must make a blocked Print return.
	Stuck func()
}

// Run runs st in a worker from the pool and returns how it ended. Decision
// events are logged to Config.Audit as they arrive, on opt.Template.
// Cancelling ctx asks the worker to stop the script, and kills it
// cancelGrace later.
func (p *Pool) Run(ctx context.Context, st *workerproto.Start, opt RunOptions) *End {
	lim := st.Limits
	log := cmp.Or(opt.Log, p.cfg.Log)
	key := reuseKey(st)
	w, poolDone, err := p.get(st.PolicyVersion, key)
	defer poolDone()
	if err != nil {
		log.WithError(err).Error("worker did not start")
		return EndWith(outcome.ExitInternal, outcome.KindInternal, "worker process did not start")
	}
	if w.policyVersion != st.PolicyVersion {
		// The worker has not loaded the caller's policy set: send its
		// files. One that has loaded it runs with it, and checks the
		// version itself (workerproto.Preload).
		st.Policies = opt.Policy.Files()
	}
	pid := w.cmd.Process.Pid
	log.WithFields(logrus.Fields{"pid": pid, "runs": w.runs}).Debug("worker started")

	// The Start message and every Confirm go through one writer, so
	// frames never interleave on the worker's stdin.
	in := workerproto.NewWriter(w.stdin)
	go func() {
		// A worker that dies before reading it makes this fail; its exit
		// says why.
		_ = in.WriteJSON(workerproto.TypeStart, st)
	}()
	stdinOnce := sync.OnceFunc(func() { _ = w.stdin.Close() })
	keep := false // the worker is parked for its principal's next script
	defer func() {
		if keep {
			w.policyVersion = st.PolicyVersion
			p.park(w, key)
			return
		}
		stdinOnce()
		_ = w.stdout.Close()
		_ = w.stderr.Close()
		_ = w.ring.Unmap()
		_ = w.fds.Close()
	}()

	rd := &workerReader{sink: p.cfg.Audit, clock: p.cfg.Clock, print: opt.Print, decision: opt.Decision,
		maxOutput: lim.MaxOutput, maxDecisions: lim.MaxOperations, template: opt.Template, confirm: in, ring: w.ring,
		observer: p.cfg.Observer,
		cat: catter{fds: w.fds, out: opt.Cat, print: opt.Print, maxRead: lim.MaxRead,
			deadline: catDeadline(lim.MaxWall), halt: &atomic.Bool{}}}
	// read starts the reader; readC is closed when it returns.
	read := func() <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			rd.run(&quietReader{f: w.stdout, quiet: func() bool { return rd.drain(false) }})
		}()
		return done
	}
	// guardDrain bounds a reader still running once the worker is gone:
	// whatever the worker wrote is in the pipe; a descendant still holding
	// it gets drainGrace, then the pipe is shut.
	guardDrain := func(done <-chan struct{}) {
		go func() {
			select {
			case <-done:
			case <-time.After(drainGrace):
				_ = w.stdout.Close()
				if opt.Stuck != nil {
					opt.Stuck() // a Print stuck on a client that does not read
				}
			}
		}()
	}
	waitC := (<-chan struct{})(w.waitDone)

	wall := time.NewTimer(lim.MaxWall + wallGrace)
	defer wall.Stop()
	poll := time.NewTicker(memPoll)
	defer poll.Stop()
	baseRSS := w.rss()
	var (
		ev      workerEvents
		cancelC <-chan time.Time
		ctxDone = ctx.Done()
		readC   = read()
	)
	// kill records why the server stops the worker and stops it, unless
	// it has already been waited for (its group id may be reused then).
	kill := func(why *End) {
		rd.cat.halt.Store(true) // a file being streamed stops too
		ev.serverKill(why)
		w.kill()
	}
loop:
	for !ev.exited || readC != nil {
		select {
		case <-ctxDone:
			ctxDone = nil
			ev.cancelled = true
			rd.cat.halt.Store(true)
			stdinOnce() // asks the worker to stop the script
			cancelC = time.After(cancelGrace)
		case <-cancelC:
			cancelC = nil
			kill(EndWith(outcome.ExitInternal, outcome.KindInternal, "session ended"))
		case <-wall.C:
			kill(EndWith(outcome.ExitLimitExceeded, outcome.KindLimitExceeded,
				fmt.Sprintf("wall-clock limit of %s exceeded (worker stopped by the server)", lim.MaxWall)))
		case <-poll.C:
			if lim.MaxMemory <= 0 || ev.exited {
				continue
			}
			if rss := w.rss(); rss > 0 && rss-max(baseRSS, 0) > lim.MaxMemory {
				kill(EndWith(outcome.ExitLimitExceeded, outcome.KindLimitExceeded,
					fmt.Sprintf("memory limit of %d bytes exceeded", lim.MaxMemory)))
			}
		case <-readC:
			readC = nil
			ev.read(rd)
			if ev.broken() {
				w.kill() // nothing more it says is believed
				continue
			}
			if !rd.atResult {
				continue // the end of the pipe
			}
			rd.atResult = false
			if !ev.exited && p.reusable(w, &ev, rd) {
				keep = true
				break loop
			}
			// The worker is not parked: its stdin ends, and it is read
			// to the end of its pipe, where anything after its result
			// breaks the protocol.
			stdinOnce()
			readC = read()
			if ev.exited {
				guardDrain(readC)
			}
		case <-waitC:
			waitC = nil
			ev.exited, ev.waitErr = true, w.waitErr
			stdinOnce()
			if readC != nil {
				guardDrain(readC)
			}
		}
	}
	// The worker is gone: what it put in the ring and did not announce by
	// a message (it was killed, or crashed, or the reader stopped early)
	// is logged now.
	rd.finish()
	ev.read(rd)
	if rd.protoErr != nil {
		log.WithError(rd.protoErr).Error("worker protocol error")
	}
	if rd.auditErr != nil {
		log.WithError(rd.auditErr).Warn("audit line not written: worker stopped, session ends")
	}
	if !keep {
		select {
		case <-w.errDone:
		case <-time.After(drainGrace):
			_ = w.stderr.Close()
			<-w.errDone
		}
	}

	end := ev.end(w.stderrHead.String(), lim)
	if ev.result == nil {
		log.WithFields(map[string]any{"pid": pid, "exit": fmt.Sprint(ev.waitErr), "stderr": tail(w.stderrHead.String(), 2048)}).
			Warn("worker ended without a result")
	}
	end.Allowed, end.Denied = rd.allowed, rd.denied
	end.Cancelled = ev.cancelled
	return end
}

// workerEvents records everything that happened to one worker, in
// whatever order it happened: its result, a broken protocol, output past
// its cap, a decision line the server could not write, a kill by the
// server (a limit, the caller's end), the caller's context ending, the
// process's exit. end decides the script's end once, from all of it. It is
// owned by Run's goroutine.
type workerEvents struct {
	result     *End  // the worker's Result message
	protoErr   error // the worker broke the protocol
	auditErr   *auditFailure
	overOutput bool  // the worker printed past MaxOutput
	killed     *End  // why the server killed the worker, first reason
	cancelled  bool  // the caller's context ended while the worker ran
	exited     bool  // the process has been waited for
	waitErr    error // its exit status
}

// read records what the reader saw, once it has finished.
func (ev *workerEvents) read(rd *workerReader) {
	ev.result, ev.protoErr, ev.auditErr, ev.overOutput = rd.result, rd.protoErr, rd.auditErr, rd.overOutput
}

// broken reports whether the worker must be stopped for what it sent, or
// for a line that could not be written.
func (ev *workerEvents) broken() bool {
	return ev.protoErr != nil || ev.auditErr != nil || ev.overOutput
}

func (ev *workerEvents) serverKill(why *End) {
	if ev.killed == nil && !ev.exited {
		ev.killed = why
	}
}

// end decides how the script ended. A line that could not be written and
// a broken protocol win over anything the worker claimed, its result
// included; then output past its cap; then a kill by the server; then the
// worker's result; then the caller's end; and a worker that left no
// result otherwise crashed.
func (ev *workerEvents) end(stderr string, lim workerproto.Limits) *End {
	switch {
	case ev.auditErr != nil:
		return EndWith(outcome.ExitInternal, outcome.KindInternal, ev.auditErr.message())
	case ev.protoErr != nil:
		return EndWith(outcome.ExitInternal, outcome.KindInternal, "worker protocol error")
	case ev.overOutput:
		return EndWith(outcome.ExitLimitExceeded, outcome.KindLimitExceeded,
			fmt.Sprintf("output limit of %d bytes exceeded", lim.MaxOutput))
	case ev.killed != nil:
		return ev.killed
	case ev.result != nil:
		return ev.result
	case ev.cancelled:
		return EndWith(outcome.ExitInternal, outcome.KindInternal, "session ended")
	}
	return crashEnd(ev.waitErr, stderr, lim)
}

// crashEnd names the end of a worker that sent no result and was not
// killed by the server.
func crashEnd(waitErr error, stderr string, lim workerproto.Limits) *End {
	switch {
	case strings.Contains(stderr, "stack overflow") || strings.Contains(stderr, "goroutine stack exceeds"):
		return EndWith(outcome.ExitLimitExceeded, outcome.KindLimitExceeded,
			fmt.Sprintf("interpreter stack limit of %d bytes exceeded (nesting too deep)", lim.MaxStack))
	case strings.Contains(stderr, "out of memory") || strings.Contains(stderr, "cannot allocate memory"),
		// Thread stacks count against RLIMIT_DATA: a worker at its memory
		// cap fails to start a thread before it fails an allocation.
		lim.MaxMemory > 0 && (strings.Contains(stderr, "pthread_create failed") ||
			strings.Contains(stderr, "failed to create new OS thread")),
		// A Starlark script cannot corrupt memory, so a Go runtime fault
		// in a worker under a data limit is that limit failing a mapping
		// inside the runtime (seen in the collector) rather than at an
		// allocation.
		lim.MaxMemory > 0 && goFatalExit(waitErr) && (strings.HasPrefix(stderr, "SIGSEGV") ||
			strings.HasPrefix(stderr, "SIGBUS") || strings.HasPrefix(stderr, "fatal error: runtime")):
		return EndWith(outcome.ExitLimitExceeded, outcome.KindLimitExceeded,
			fmt.Sprintf("memory limit of %d bytes exceeded", lim.MaxMemory))
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return EndWith(outcome.ExitInternal, outcome.KindInternal,
				fmt.Sprintf("worker process killed by signal %d (%s)", int(ws.Signal()), ws.Signal()))
		}
		return EndWith(outcome.ExitInternal, outcome.KindInternal,
			fmt.Sprintf("worker process exited with status %d without a result", ee.ExitCode()))
	}
	return EndWith(outcome.ExitInternal, outcome.KindInternal, "worker process ended without a result")
}

// workerReader reads one worker's messages. Its fields are owned by the
// reading goroutine until it returns.
type workerReader struct {
	sink      audit.Sink
	clock     func() time.Time
	print     func([]byte) error // one print call's bytes, newline included
	decision  func(audit.Event)  // after the event is in the audit log, or nil
	template  audit.Event
	maxOutput int64
	// maxDecisions is the script's operation cap: an honest worker reports
	// at most one decision past it (the deny of the operation that hit
	// it), so more is a worker flooding the audit log; 0 means no cap.
	maxDecisions int64
	confirm      *workerproto.Writer // the worker's stdin, for Confirm messages
	ring         *workerproto.Ring   // consumer end of the worker's decision ring
	// fr reads the worker's stdout; made by the first run and kept, so a
	// second run (after the result, till the end of the pipe) loses no
	// byte read ahead.
	fr       *workerproto.Reader
	observer Observer // told of each decision line written, or nil
	// atResult is set when run returned right after the worker's result
	// rather than at the end of the pipe.
	atResult bool
	cat      catter // fs.cat's streams (cat.go)

	output     int64
	allowed    int
	denied     int
	result     *End
	protoErr   error
	auditErr   *auditFailure
	overOutput bool
}

// auditFailure is a decision line the server could not write.
type auditFailure struct {
	action, resource string
	err              error
}

func (a *auditFailure) Error() string {
	return fmt.Sprintf("worker: audit %s %s: %v", a.action, a.resource, a.err)
}

// message is what the client is told: the operation did not happen.
func (a *auditFailure) message() string {
	return "audit log unwritable, " + a.action + " " + a.resource + " not performed"
}

// run reads messages until the pipe ends or the worker breaks the
// protocol. A worker that breaks it is killed and nothing more it says is
// believed; what it sent before is logged. Messages are handled in order,
// each after the decisions the worker put in its ring before it, and a
// decision line that cannot be written ends the reading too: nothing the
// worker sent after it (a print of what it read, its result) is
// forwarded. An AuditSync or Sync message is confirmed only once its
// lines are written; the worker's operation waits for that.
func (rd *workerReader) run(r io.Reader) {
	if rd.fr == nil {
		rd.fr = workerproto.NewReader(r, workerproto.DefaultMaxFrame)
	}
	for {
		typ, p, err := rd.fr.Next()
		if rd.stopped() {
			return // a quiet-time drain failed: nothing more is handled
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				rd.protoErr = err
			}
			return
		}
		if rd.result != nil {
			rd.protoErr = fmt.Errorf("worker: worker sent %s after its result", typ)
			return
		}
		if !rd.drain(typ == workerproto.TypePrint) {
			return
		}
		switch typ {
		case workerproto.TypeAudit, workerproto.TypeAuditSync:
			// A decision the ring cannot carry (workerproto.MaxRecord).
			d, err := decisionOf(p)
			if err == nil {
				err = rd.audit(d)
			}
			if !rd.failed(err) {
				return
			}
			if typ == workerproto.TypeAuditSync {
				// A worker that has stopped reading its stdin finds out
				// when it is killed; its operation waits until then.
				_ = rd.confirm.WriteRaw(workerproto.TypeConfirm, nil)
			}
		case workerproto.TypeSync:
			if len(p) != 0 {
				rd.protoErr = errors.New("worker: worker sent a sync message with a payload")
				return
			}
			// The ring was emptied above, each line written.
			_ = rd.confirm.WriteRaw(workerproto.TypeConfirm, nil)
		case workerproto.TypePrint:
			rd.output += int64(len(p))
			if rd.maxOutput > 0 && rd.output > rd.maxOutput {
				rd.overOutput = true
				return
			}
			_ = rd.print(p)
		case workerproto.TypeCat:
			if !rd.catFile(p) {
				return
			}
		case workerproto.TypeResult:
			var res workerproto.Result
			if err := workerproto.Decode(typ, p, &res); err != nil {
				rd.protoErr = err
				return
			}
			if !outcome.ValidEnd(res.Exit, res.Error) {
				rd.protoErr = fmt.Errorf("worker: worker result has exit %d and error %v", res.Exit, res.Error)
				return
			}
			if len(res.Value) > 0 && !json.Valid(res.Value) {
				rd.protoErr = errors.New("worker: worker result value is not JSON")
				return
			}
			rd.result = &End{Exit: res.Exit, Err: res.Error, Value: res.Value, Steps: res.Steps,
				Duration: res.Duration, BytesRead: res.BytesRead, BytesWritten: res.BytesWritten}
			// A worker may run another script after this one (reuse.go):
			// Run reads on only if it does not.
			rd.atResult = true
			return
		default:
			rd.protoErr = fmt.Errorf("worker: worker sent a %s message", typ)
			return
		}
	}
}

// stopped reports whether nothing more the worker says may be handled: it
// broke the protocol, or a line could not be written.
func (rd *workerReader) stopped() bool { return rd.protoErr != nil || rd.auditErr != nil }

// failed records err, an *auditFailure or a protocol error, and reports
// whether reading may go on (err is nil).
func (rd *workerReader) failed(err error) bool {
	if err == nil {
		return true
	}
	if af, ok := err.(*auditFailure); ok {
		rd.auditErr = af
	} else {
		rd.protoErr = err
	}
	return false
}

// decisionOf decodes an Audit or AuditSync message: one decision event.
func decisionOf(p []byte) (workerproto.Decision, error) {
	var e audit.Event
	if err := workerproto.Decode(workerproto.TypeAudit, p, &e); err != nil {
		return workerproto.Decision{}, err
	}
	if e.Event != audit.Decision {
		return workerproto.Decision{}, fmt.Errorf("worker: worker sent a %q audit event", e.Event)
	}
	if e.Decision != "allow" && e.Decision != "deny" {
		return workerproto.Decision{}, fmt.Errorf("worker: worker sent decision %q", e.Decision)
	}
	return workerproto.Decision{Action: e.Action, Resource: e.Resource, Allow: e.Decision == "allow",
		Policies: e.Policies, Reason: e.Reason, Argv: e.Argv}, nil
}

// audit logs one decision the worker reported. Only the fields the
// operation decides (action, resource, argv, decision, policies, reason)
// come from the worker; who, where, when and under which policy come from
// the caller's template. A line the audit log refused is an *auditFailure.
func (rd *workerReader) audit(d workerproto.Decision) error {
	if rd.maxDecisions > 0 && int64(rd.allowed+rd.denied) > rd.maxDecisions {
		return fmt.Errorf("worker: worker reported more than %d decisions, past the operation limit of %d",
			rd.maxDecisions+1, rd.maxDecisions)
	}
	if d.Allow {
		rd.allowed++
	} else {
		rd.denied++
	}
	out := rd.template
	out.Time = rd.clock()
	out.Event = audit.Decision
	out.Action = d.Action
	out.Resource = d.Resource
	out.Argv = d.Argv
	out.Decision = "deny"
	if d.Allow {
		out.Decision = "allow"
	}
	out.Policies = d.Policies
	out.Reason = d.Reason
	if err := rd.sink.Log(out); err != nil {
		return &auditFailure{action: d.Action, resource: d.Resource, err: err}
	}
	observeDecision(rd.observer, d.Action, d.Allow)
	if rd.decision != nil {
		rd.decision(out)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// goFatalExit reports whether a worker exited with status 2, the status
// of a Go runtime fatal error or unrecovered fault.
func goFatalExit(waitErr error) bool {
	var ee *exec.ExitError
	return errors.As(waitErr, &ee) && ee.ExitCode() == 2
}
