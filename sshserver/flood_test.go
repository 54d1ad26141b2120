package sshserver_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
	"github.com/keyhole-dev/keyhole/starlarkrt"
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

// TestMaxOperations: a logged-in principal cannot flood the audit log
// from a script: past Limits.MaxOperations decisions (allowed() queries
// and denied operations count too) the script ends with LIMIT_EXCEEDED
// (124), which catch does not catch, and the audit log holds one line per
// decision up to the cap plus the deny of the one past it.
func TestMaxOperations(t *testing.T) {
	t.Parallel()
	testenv.NeedBinary(t, "ssh")
	const max = 50
	e := startEnv(t, sshserver.Limits{MaxOperations: max})
	app := e.Sandbox + "/logs/app.log"
	for _, tc := range []struct{ name, script string }{
		{"allowed", fmt.Sprintf(`for i in range(2000000): allowed("read", %q)`, app)},
		{"caught", fmt.Sprintf(`for i in range(2000000): catch(fs.read, %q)`, e.Sandbox+"/secrets/token")},
		{"denied-allowed", fmt.Sprintf(`for i in range(2000000): allowed("read", %q)`, e.Sandbox+"/secrets/token")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.SSH(t, "logs", tc.script)
			if res.Exit != 124 || !strings.Contains(res.Stderr, "LIMIT_EXCEEDED: read ") ||
				!strings.Contains(res.Stderr, "operation limit of 50 is exceeded") {
				t.Fatalf("exit %d stderr %q, want 124 and the operation limit", res.Exit, res.Stderr)
			}
			over := e.WaitAudit(t, func(ev map[string]any) bool {
				return ev["event"] == "decision" && ev["script_sha256"] == starlarkrt.ScriptSHA256(tc.script) &&
					strings.Contains(fmt.Sprint(ev["reason"]), "operation limit")
			})
			e.WaitAudit(t, func(ev map[string]any) bool {
				return ev["event"] == "session.end" && ev["session"] == over["session"]
			})
			decisions, denies := 0, 0
			for _, ev := range e.Audit(t) {
				if ev["event"] == "decision" && ev["session"] == over["session"] {
					decisions++
					if strings.Contains(fmt.Sprint(ev["reason"]), "operation limit") {
						denies++
					}
				}
			}
			if decisions != max+1 || denies != 1 || over["decision"] != "deny" {
				t.Errorf("%d decision lines (%d past the cap), want %d (1, a deny)", decisions, denies, max+1)
			}
		})
	}
	stillServes(t, e)
}
