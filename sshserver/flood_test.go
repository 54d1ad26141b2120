package sshserver_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// TestUnauthenticatedFloodBoundedAudit floods the server for a few seconds
// with connections that offer unknown keys, from one source: the audit log
// gets a handful of lines for that source (the rest are counted for a
// summary line), not one per refused key, and a client from another
// source still runs a script with the stock ssh during the flood. The
// full-length version (60 s) is bench's TestFloodAudit.
func TestUnauthenticatedFloodBoundedAudit(t *testing.T) {
	t.Parallel()
	testenv.NeedBinary(t, "ssh")
	e := startEnv(t, sshserver.Limits{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	done := make(chan testenv.FloodStats, 1)
	go func() { done <- testenv.FloodUnauthenticated(ctx, t, e.Addr, "127.0.0.3", 16, 3) }()

	res := e.SSH(t, "logs", `print("in")`)
	if res.Exit != 0 || res.Stdout != "in\n" {
		t.Errorf("legitimate client during the flood: exit %d %q %q", res.Exit, res.Stdout, res.Stderr)
	}
	st := <-done
	lines := 0
	for _, ev := range e.Audit(t) {
		if ev["source"] == "127.0.0.3" {
			lines++
		}
	}
	t.Logf("flood: %d connections, %d keys refused, %d audit lines", st.Connections, st.Keys, lines)
	if st.Keys < 100 {
		t.Fatalf("flood too slow to test anything: %d keys refused", st.Keys)
	}
	// The first lines of the window in full; at most one summary per
	// window (none yet: the window is 10 s).
	if lines > 10 || lines == 0 {
		t.Errorf("%d audit lines for %d refused keys from one source, want 1..10", lines, st.Keys)
	}
	if fi, err := os.Stat(e.AuditPath); err == nil {
		t.Logf("audit log: %d bytes", fi.Size())
	}
}
