package sshserver_test

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// lastRun returns the pid and earlier runs of the last script's worker.
func (h *pidHook) lastRun(t *testing.T) (pid, runs int) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pids) == 0 {
		t.Fatal("no worker logged")
	}
	return h.pids[len(h.pids)-1], h.runs[len(h.runs)-1]
}

// runAs runs script as login with signer and returns its stderr and exit
// status.
func runAs(t *testing.T, e *testenv.Env, login string, signer gossh.Signer, script string) (string, string, int) {
	t.Helper()
	c, err := gossh.Dial("tcp", e.Addr, e.ClientConfig(login, signer))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr strings.Builder
	s.Stdout, s.Stderr = &stdout, &stderr
	exit := 0
	if err := s.Run(script); err != nil {
		var ee *gossh.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run: %v", err)
		}
		exit = ee.ExitStatus()
	}
	return stdout.String(), stderr.String(), exit
}

// TestWorkerReuse: a worker whose script ended cleanly runs the next
// script of the same principal, and never one of another user or role,
// nor anything after a script that ended otherwise.
func TestWorkerReuse(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel)
	hook := &pidHook{}
	log.AddHook(hook)
	obs := &parkedObserver{}
	e := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"logs.cedar": logsPolicy},
		Files:    sandboxFiles,
		Limits:   sshserver.Limits{MaxWall: time.Minute, MaxSteps: 100000},
		Log:      log,
		Observer: obs,
	})
	agent7 := e.UserSigner(t)
	key8 := testenv.NewKey(t, e.Dir, "agent8")
	agent8 := testenv.CertSigner(t, key8, testenv.Cert(t, e.CA, key8+".pub", "agent-8", "logs"))
	marker := filepath.Join(e.Sandbox, "logs/app.log")

	step := func(name, login string, signer gossh.Signer, script string, wantExit int) int {
		t.Helper()
		stdout, stderr, exit := runAs(t, e, login, signer, script)
		if exit != wantExit {
			t.Fatalf("%s: exit %d, want %d; stdout %q stderr %q", name, exit, wantExit, stdout, stderr)
		}
		pid, _ := hook.lastRun(t)
		return pid
	}

	first := step("first", "logs", agent7, `secret = fs.read("`+marker+`")`, 0)
	if got := step("same principal", "logs", agent7, `print(1)`, 0); got != first {
		t.Errorf("same principal ran in worker %d, want the parked %d", got, first)
	}
	if _, runs := hook.lastRun(t); runs != 1 {
		t.Errorf("the reused worker had run %d scripts before, want 1", runs)
	}
	if n, want := obs.parked.Load(), int64(e.Server.ParkedWorkers()); n != 1 || want != 1 {
		t.Errorf("observer told of %d parked workers, pool has %d; want 1", n, want)
	}
	// A script sees nothing of the one before: a new interpreter.
	if got := step("no globals carried", "logs", agent7, `print(secret)`, 2); got != first {
		t.Errorf("worker %d, want %d", got, first)
	}
	if got := step("other role", "deploy", agent7, `print(1)`, 0); got == first {
		t.Errorf("role deploy ran in the worker of role logs (%d)", got)
	}
	if got := step("other user", "logs", agent8, `print(1)`, 0); got == first {
		t.Errorf("user agent-8 ran in the worker of agent-7 (%d)", got)
	}
	// A file sent by descriptor leaves nothing on the worker's socket.
	if got := step("cat", "logs", agent7, `fs.cat("`+marker+`")`, 0); got != first {
		t.Errorf("worker %d after fs.cat, want %d", got, first)
	}
	if got := step("after cat", "logs", agent7, `fs.cat("`+marker+`")`, 0); got != first {
		t.Errorf("worker %d for a second fs.cat, want %d", got, first)
	}
	// A denial is a clean end; the worker stays.
	if got := step("denied", "logs", agent7, `fs.read("/etc/shadow")`, 13); got != first {
		t.Errorf("worker %d after a denial, want %d", got, first)
	}
	// A limit is not: the worker that hit it ends.
	if got := step("limit", "logs", agent7, "while True: pass", 124); got != first {
		t.Errorf("worker %d, want %d", got, first)
	}
	if got := step("after the limit", "logs", agent7, `print(1)`, 0); got == first {
		t.Errorf("worker %d ran a script after one that hit a limit", got)
	}
	stillServes(t, e)
}

// TestWorkerReuseOff: with no parking every script gets a worker of its
// own.
func TestWorkerReuseOff(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel)
	hook := &pidHook{}
	log.AddHook(hook)
	e := testenv.Start(t, testenv.Options{
		Policies:     map[string]string{"logs.cedar": logsPolicy},
		Log:          log,
		WorkerParked: -1,
	})
	seen := map[int]bool{}
	for range 3 {
		if _, stderr, exit := runAs(t, e, "logs", e.UserSigner(t), `print(1)`); exit != 0 {
			t.Fatalf("exit %d: %s", exit, stderr)
		}
		pid, runs := hook.lastRun(t)
		if seen[pid] || runs != 0 {
			t.Errorf("worker %d reused (%d runs before) with parking off", pid, runs)
		}
		seen[pid] = true
	}
	if n := e.Server.ParkedWorkers(); n != 0 {
		t.Errorf("%d workers parked with parking off", n)
	}
}

// parkedObserver records what the server tells an Observer of parked
// workers, and ignores the rest.
type parkedObserver struct{ parked atomic.Int64 }

func (o *parkedObserver) ParkedWorkers(n int)      { o.parked.Store(int64(n)) }
func (o *parkedObserver) WorkerStarted(bool)       {}
func (o *parkedObserver) IdleWorkers(int)          {}
func (o *parkedObserver) Decision(string, bool)    {}
func (o *parkedObserver) SessionOpened()           {}
func (o *parkedObserver) SessionEnded(string, int) {}
func (o *parkedObserver) SessionRefused(string)    {}
func (o *parkedObserver) AuthRefused(string)       {}
func (o *parkedObserver) ScriptRan(time.Duration)  {}
func (o *parkedObserver) LimitHit(string)          {}
