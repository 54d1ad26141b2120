package sshserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// shutdownEnv is a server whose scripts may run sh and sleep.
func shutdownEnv(t *testing.T) (e *testenv.Env, sh, sleep string) {
	t.Helper()
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	sleep, err = filepath.EvalSymlinks("/bin/sleep")
	if err != nil {
		t.Skipf("no sleep: %v", err)
	}
	e = testenv.Start(t, testenv.Options{
		Policies: map[string]string{"p.cedar": fmt.Sprintf(`@id("sh") permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::%q);
@id("sleep") permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::%q);`, sh, sleep)},
		Limits: sshserver.Limits{MaxWall: 5 * time.Minute},
	})
	return e, sh, sleep
}

// scriptEnd is how one session ended, as its client saw it.
type scriptEnd struct {
	exit           int
	stdout, stderr string
	err            error
}

// TestShutdownEndsRunningScripts runs 20 scripts, then shuts the server
// down with a grace: the 10 scripts that end within it (they wait for a
// file the test creates once Shutdown has begun) end as they would have,
// exit 0; the 10 that would run on (an exec script, some through the
// structured subsystem) end with INTERNAL: server shutting down, exit
// 125. Meanwhile a new session on an open connection is refused, audited,
// and new connections are not accepted. Every session.start has its
// session.end, and Shutdown returns soon after the grace.
func TestShutdownEndsRunningScripts(t *testing.T) {
	t.Parallel()
	e, sh, sleep := shutdownEnv(t)
	gate := filepath.Join(e.Dir, "go")
	const n = 20
	ends := make([]scriptEnd, n)
	ready := make(chan int, n)
	var wg sync.WaitGroup
	idle := dial(t, e, "logs") // a connection with no session yet
	for i := 0; i < n; i++ {
		c := dial(t, e, "logs")
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		short := i%2 == 0
		script := fmt.Sprintf("print(\"ready\")\nproc.run([%q, \"300\"], timeout = 600)\nprint(\"unreached\")", sleep)
		if short {
			script = fmt.Sprintf("print(\"ready\")\nr = proc.run([%q, \"-c\", \"while [ ! -e %s ]; do sleep 0.05; done\"], timeout = 120)\nprint(\"done\", r.exit)", sh, gate)
		}
		structured := i%4 == 1
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			ends[i] = runUntilEnd(s, script, structured, func() { ready <- i })
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			t.Fatalf("only %d of %d scripts started", i, n)
		}
	}

	const grace = 6 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	t0 := time.Now()
	type result struct {
		st  sshserver.ShutdownStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := e.Server.Shutdown(ctx)
		done <- result{st, err}
	}()
	// Draining: new connections are refused, and then a new session on
	// an open connection is refused with the reason.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", e.Addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener is still open")
		}
		runtime.Gosched()
	}
	if _, err := idle.NewSession(); err == nil || !strings.Contains(err.Error(), sshserver.MsgShuttingDown) {
		t.Errorf("session opened while shutting down: %v", err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := <-done
	took := time.Since(t0)
	if res.err != nil {
		t.Fatalf("shutdown: %v", res.err)
	}
	if took > grace+5*time.Second {
		t.Errorf("shutdown took %s with a grace of %s", took, grace)
	}
	if res.st.Running != n || res.st.Ended != n/2 {
		t.Errorf("stats %+v, want %d running, %d ended", res.st, n, n/2)
	}
	wg.Wait()
	for i, end := range ends {
		if end.err != nil {
			t.Errorf("session %d: %v", i, end.err)
			continue
		}
		if i%2 == 0 {
			if end.exit != 0 || end.stdout != "ready\ndone 0\n" {
				t.Errorf("short session %d: exit %d stdout %q stderr %q", i, end.exit, end.stdout, end.stderr)
			}
			continue
		}
		if end.exit != 125 || end.stdout != "ready\n" || end.stderr != "INTERNAL: server shutting down\n" {
			t.Errorf("long session %d: exit %d stdout %q stderr %q", i, end.exit, end.stdout, end.stderr)
		}
	}

	// The audit log: every session.start has one session.end; the ended
	// ones say why; the refusal is there.
	starts, endLines := map[string]bool{}, map[string]map[string]any{}
	refused := 0
	for _, ev := range e.Audit(t) {
		sid, _ := ev["session"].(string)
		switch ev["event"] {
		case "session.start":
			starts[sid] = true
		case "session.end":
			if endLines[sid] != nil {
				t.Errorf("session %s has two session.end lines", sid)
			}
			endLines[sid] = ev
		case "request.refused":
			if ev["reason"] == sshserver.MsgShuttingDown {
				refused++
			}
		}
	}
	if len(starts) != n || len(endLines) != n {
		t.Fatalf("%d session.start and %d session.end lines, want %d each", len(starts), len(endLines), n)
	}
	shutdownEnds := 0
	for sid := range starts {
		ev := endLines[sid]
		if ev == nil {
			t.Errorf("session %s has no session.end", sid)
			continue
		}
		switch ev["exit"] {
		case 0.0:
		case 125.0:
			if ev["reason"] != sshserver.MsgShuttingDown {
				t.Errorf("session.end %v: reason %v", sid, ev["reason"])
			}
			shutdownEnds++
		default:
			t.Errorf("session.end %v: exit %v", sid, ev["exit"])
		}
	}
	if shutdownEnds != n/2 || refused != 1 {
		t.Errorf("%d session.end lines for the shutdown, %d refusals; want %d and 1", shutdownEnds, refused, n/2)
	}
}

// runUntilEnd runs script on s (an exec request, or the structured
// subsystem), calls ready once "ready" is printed, and returns the end.
func runUntilEnd(s *gossh.Session, script string, structured bool, ready func()) scriptEnd {
	var end scriptEnd
	var stderr strings.Builder
	s.Stderr = &stderr
	out, err := s.StdoutPipe()
	if err != nil {
		return scriptEnd{err: err}
	}
	if structured {
		in, err := s.StdinPipe()
		if err != nil {
			return scriptEnd{err: err}
		}
		if err := s.RequestSubsystem("keyhole"); err != nil {
			return scriptEnd{err: err}
		}
		b, _ := json.Marshal(map[string]any{"script": script})
		if _, err := in.Write(append(b, '\n')); err != nil {
			return scriptEnd{err: err}
		}
	} else if err := s.Start(script); err != nil {
		return scriptEnd{err: err}
	}
	sc := bufio.NewScanner(out)
	var stdout strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if structured {
			var m struct {
				Print *string
				Exit  *int
				Error *struct{ Kind, Message string }
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				return scriptEnd{err: fmt.Errorf("line %q: %v", line, err)}
			}
			switch {
			case m.Print != nil:
				line = *m.Print
			case m.Exit != nil:
				// The exit line; the stderr line says the same as its error.
				// (a subsystem session's stderr is not copied without
				// Start: the error of the exit line stands for it).
				end.exit = *m.Exit
				if m.Error != nil && m.Error.Kind != "" {
					stderr.WriteString(m.Error.Kind + ": " + m.Error.Message + "\n")
				}
				continue
			default:
				continue
			}
		}
		stdout.WriteString(line + "\n")
		if line == "ready" {
			ready()
		}
	}
	if !structured { // a subsystem session is not "started" for Wait
		err = s.Wait()
		var ee *gossh.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			end.exit = ee.ExitStatus()
		default:
			end.err = err
		}
	}
	end.stdout, end.stderr = stdout.String(), stderr.String()
	return end
}

// TestShutdownEndsWaitingSessions: sessions that have not started a
// script when the grace ends (a channel with no request yet, a structured
// session whose request line has not come) end at once, not after the
// login grace, each with its session.end line saying why.
func TestShutdownEndsWaitingSessions(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{LoginGrace: time.Minute})
	c := dial(t, e, "logs")
	defer c.Close()
	idle, err := c.NewSession() // no request
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	waiting, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	if _, err := waiting.StdinPipe(); err != nil { // kept open, nothing sent
		t.Fatal(err)
	}
	out, err := waiting.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := waiting.RequestSubsystem("keyhole"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no grace
	t0 := time.Now()
	st, err := e.Server.Shutdown(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("shutdown took %s", took)
	}
	if st.Running != 2 || st.Ended != 2 {
		t.Errorf("stats %+v, want 2 running, 2 ended", st)
	}
	sc := bufio.NewScanner(out)
	var last string
	for sc.Scan() {
		last = sc.Text()
	}
	var end struct {
		Exit  int
		Error struct{ Kind, Message string }
	}
	if err := json.Unmarshal([]byte(last), &end); err != nil || end.Exit != 125 ||
		end.Error.Kind != "INTERNAL" || end.Error.Message != sshserver.MsgShuttingDown {
		t.Errorf("structured end line %q (%v)", last, err)
	}
	ends := 0
	for _, ev := range e.Audit(t) {
		if ev["event"] != "session.end" {
			continue
		}
		ends++
		if ev["reason"] != sshserver.MsgShuttingDown {
			t.Errorf("session.end %v", ev)
		}
		if ev["exit"] != nil && ev["exit"] != 125.0 {
			t.Errorf("session.end %v", ev)
		}
	}
	if ends != 2 {
		t.Errorf("%d session.end lines, want 2", ends)
	}
}
