package bench_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// floodEnv names the duration of TestFloodAudit's flood ("60s"); unset,
// the test skips, so it is not part of the default run.
const floodEnv = "KEYHOLE_FLOOD"

// TestFloodAudit floods keyhole for $KEYHOLE_FLOOD with unauthenticated
// connections offering unknown keys, from one loopback source at full
// speed, while a client from another source runs a script with the stock
// ssh every few seconds. It reports the audit log's growth, which must
// stay under 10 MB, and fails if the client is ever refused.
//
//	KEYHOLE_FLOOD=60s go test -run TestFloodAudit -v -timeout 5m ./bench/
func TestFloodAudit(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv(floodEnv))
	if err != nil {
		t.Skipf("set %s to a duration (e.g. 60s) to run the flood", floodEnv)
	}
	testenv.NeedBinary(t, "ssh")
	testenv.NeedBinary(t, "ssh-keygen")
	e := testenv.Start(t, testenv.Options{Policies: map[string]string{"p.cedar": `@id("none") forbid (principal, action, resource);`}})
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan testenv.FloodStats, 1)
	start := time.Now()
	go func() { done <- testenv.FloodUnauthenticated(ctx, t, e.Addr, "127.0.0.3", 16, 3) }()
	logins, worst := 0, time.Duration(0)
	for ctx.Err() == nil {
		t0 := time.Now()
		res := e.SSH(t, "logs", `print("in")`)
		if res.Exit != 0 || res.Stdout != "in\n" {
			t.Errorf("legitimate client refused during the flood: exit %d %q %q", res.Exit, res.Stdout, res.Stderr)
		}
		worst = max(worst, time.Since(t0))
		logins++
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	st := <-done
	elapsed := time.Since(start)
	fi, err := os.Stat(e.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := len(e.Audit(t))
	t.Logf("flood of %s: %d connections, %d keys refused; audit log %d bytes in %d lines; %d logins during it, slowest %s",
		elapsed.Round(time.Second), st.Connections, st.Keys, fi.Size(), lines, logins, worst.Round(time.Millisecond))
	if fi.Size() >= 10<<20 {
		t.Errorf("audit log grew by %d bytes, want under 10 MB", fi.Size())
	}
}
