package sshserver_test

import (
	"errors"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/sshserver"
)

func TestIdleTimeoutClosesIdleConnection(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{IdleTimeout: 500 * time.Millisecond})
	c := dial(t, e, "logs")
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("an idle connection was not closed")
	}
	stillServes(t, e)
}

func TestIdleTimeoutSparesRunningScript(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{IdleTimeout: 500 * time.Millisecond, MaxSteps: 1 << 62, MaxWall: 3 * time.Second})
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Silent for longer than the idle timeout: the script, not the
	// connection, decides when the session ends.
	err = s.Run("while True: pass")
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 124 {
		t.Fatalf("silent script under an idle timeout: %v, want exit 124 at its wall limit", err)
	}
}

func TestIdleTimeoutClosesSessionWithoutScript(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{IdleTimeout: 500 * time.Millisecond})
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The subsystem waits for a script on stdin that never comes.
	if err := s.RequestSubsystem("starlark"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a session that never sent its script kept its connection past the idle timeout")
	}
	e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "session.end" })
	stillServes(t, e)
}

// TestIdleTimeoutDefault: a server configured without an idle timeout
// still closes idle connections, after DefaultIdleTimeout.
func TestIdleTimeoutDefault(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{})
	if got := e.Server.EffectiveLimits().IdleTimeout; got != 10*time.Minute {
		t.Errorf("idle timeout without configuration = %v, want 10m", got)
	}
}
