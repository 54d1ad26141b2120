//go:build linux

package hostops

// Starting a pinned program and bounding it: its process group, timeout,
// output caps and the kill of whatever it leaves behind (its group, and,
// in a process that adopts orphans, everything else: reap_linux.go).

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pinnedExe is the path under which a child finds the pinned program: the
// child's own descriptor 3, the first of exec.Cmd.ExtraFiles. The kernel
// resolves the magic link to the pinned file, not to any path, and a "#!"
// script's interpreter opens the same descriptor, left open for it.
const pinnedExe = "/proc/self/fd/3"

// drainGrace is how long output is still read after the process group was
// killed, for data already in the pipes; a descendant that left the group
// and keeps a pipe open is not waited for longer than this.
const drainGrace = time.Second

// spawn runs the pinned program prog with argument vector argv and returns
// its outcome. Errors are attributed to action on resource.
func (h *Host) spawn(ctx context.Context, prog *pinned, argv []string, opts ExecOptions, action, resource string) (ExecResult, error) {
	fail := func(err error) (ExecResult, error) {
		return ExecResult{}, opError(KindIOError, action, resource, "cannot start: "+errText(err))
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultExecTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Standard input counts as written (before the start: past the
	// script's budget nothing runs), what is kept of the output as read.
	if opts.HasStdin {
		if e := h.Counters.chargeWrite(action, resource, int64(len(opts.Stdin))); e != nil {
			return ExecResult{}, e
		}
	}

	sealDescriptors()
	exe, err := dupFile(prog.fd, resource)
	if err != nil {
		return fail(err)
	}
	defer exe.Close()
	var files []*os.File // the parent's copies of the child's pipe ends
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	outR, outW, err := pipe()
	if err != nil {
		return fail(err)
	}
	errR, errW, err := pipe()
	if err != nil {
		return fail(err)
	}
	var inR, inW *os.File
	if opts.HasStdin {
		if inR, inW, err = pipe(); err != nil {
			return fail(err)
		}
	}
	cmd := &exec.Cmd{
		Path:       pinnedExe,
		Args:       argv,
		Env:        ExecEnv(),
		Dir:        "/",
		Stdout:     outW,
		Stderr:     errW,
		ExtraFiles: []*os.File{exe},
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid: true,
			// The child dies with the thread that started it: a worker
			// killed with -9 does not leave it running. Go threads end only
			// when a goroutine locked to one exits locked, which keyhole
			// never does.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if inR != nil {
		cmd.Stdin = inR // nil: /dev/null
	}
	err = startLeader(func() (int, error) {
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fail(err)
	}
	// The child holds its ends now; the parent keeps only the read ends of
	// stdout and stderr and the write end of stdin.
	for _, f := range []*os.File{outW, errW, inR, exe} {
		if f != nil {
			f.Close()
		}
	}
	g := &group{pid: cmd.Process.Pid}

	limit := h.maxExecOutput()
	var stdout, stderr capture
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); stdout.drain(outR, limit) }()
	go func() { defer wg.Done(); stderr.drain(errR, limit) }()
	if inW != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// EPIPE when the program does not read it all: not an error.
			inW.Write(opts.Stdin)
			inW.Close()
		}()
	}

	exited := make(chan struct{})
	go func() { g.waitExit(); close(exited) }()
	var killedBy error
	select {
	case <-exited:
	case <-ctx.Done():
		killedBy = ctx.Err()
		g.kill()
		<-exited
	}
	// The leader has exited but is not reaped, so its pid, the group's id,
	// cannot be reused yet: kill what is left of the group, then reap.
	g.kill()
	werr := cmd.Wait()
	endLeader(g.pid)
	// What left the group (a daemon) is this process's child now, if it
	// adopts orphans: killed here, before the drain, so a pipe it holds
	// closes.
	serr := Sweep()
	deadline := time.Now().Add(drainGrace)
	outR.SetReadDeadline(deadline)
	errR.SetReadDeadline(deadline)
	if inW != nil {
		inW.Close() // unblocks a write to a pipe nobody reads
	}
	wg.Wait()
	if e := h.Counters.chargeRead(action, resource, int64(len(stdout.buf)+len(stderr.buf))); e != nil {
		return ExecResult{}, e
	}
	if serr != nil {
		return ExecResult{}, opError(KindIOError, action, resource, "cannot stop what it started: "+serr.Error())
	}

	if killedBy != nil {
		msg := "killed with its process group: " + killedBy.Error()
		if errors.Is(killedBy, context.DeadlineExceeded) {
			msg = "timed out after " + timeout.String() + "; killed with its process group"
		}
		return ExecResult{}, opError(KindLimitExceeded, action, resource, msg)
	}
	st := cmd.ProcessState
	if st == nil {
		return fail(werr)
	}
	res := ExecResult{
		Path:      resource,
		Exit:      st.ExitCode(),
		Stdout:    stdout.buf,
		Stderr:    stderr.buf,
		Truncated: stdout.truncated || stderr.truncated,
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Exit, res.Signal = -1, unix.SignalName(ws.Signal())
	}
	return res, nil
}

func (h *Host) maxExecOutput() int64 {
	if h.MaxExecOutput > 0 {
		return h.MaxExecOutput
	}
	return DefaultMaxExecOutput
}

// sealDescriptors marks every descriptor of this process from 3 up
// close-on-exec, so that a program started here gets only its standard
// streams and the pinned program. Go opens every descriptor close-on-exec
// and passes what a child should have by dup2, which clears the flag; the
// ones it does not cover are those this process inherited when it started
// (from a supervisor, a shell, a test runner), which would otherwise reach
// every program run.
func sealDescriptors() {
	if unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	// Kernels before 5.11: one descriptor at a time.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}

// dupFile returns a new *os.File for a duplicate of fd, close-on-exec in
// this process (the child's copy, dup2'ed to descriptor 3, is not).
func dupFile(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// group is a started program's process group; its id is the leader's pid.
type group struct{ pid int }

// waitExit blocks until the leader has exited, without reaping it.
func (g *group) waitExit() {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, g.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// kill sends SIGKILL to every process of the group. spawn calls it only
// while the leader is running or a zombie, never after it was reaped, so
// the id cannot name a group that reused it.
func (g *group) kill() { unix.Kill(-g.pid, unix.SIGKILL) }

// capture keeps the first bytes of a stream and counts the rest.
type capture struct {
	buf       []byte
	truncated bool
}

// drain reads r until EOF, an error or its deadline, keeping at most limit
// bytes; the rest is read and dropped so the writer never blocks on a full
// pipe.
func (c *capture) drain(r io.Reader, limit int64) {
	chunk := make([]byte, 32<<10)
	for {
		n, err := r.Read(chunk)
		if n > 0 {
			keep := min(int64(n), limit-int64(len(c.buf)))
			if keep > 0 {
				c.buf = append(c.buf, chunk[:keep]...)
			}
			if keep < int64(n) {
				c.truncated = true
			}
		}
		if err != nil {
			return
		}
	}
}

// errText is the errno text of err, without the wrappers' paths (which
// name /proc/self/fd/3, not the program).
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}
