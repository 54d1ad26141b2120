package metrics_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/keyhole-dev/keyhole/metrics"
)

// TestMain fails the run if a test leaves a goroutine behind (a server
// that Close did not stop).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNilMetricsIsOff calls every method on a nil *Metrics: none panics.
func TestNilMetricsIsOff(t *testing.T) {
	var m *metrics.Metrics
	m.SessionOpened()
	m.SessionEnded("script", 0)
	m.SessionRefused("x")
	m.AuthRefused("x")
	m.Decision("read", true)
	m.ScriptRan(time.Second)
	m.LimitHit("steps")
	m.WorkerStarted(true)
	m.IdleWorkers(2)
	m.PolicyLoaded("v")
	m.PolicyReloaded("v", errors.New("bad"))
	m.AuditWritable(false)
}

// TestOwnRegistry: two Metrics count apart, and neither touches
// Prometheus' default registry.
func TestOwnRegistry(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.Decision("read", false)
	a.Decision("read", false)
	b.Decision("read", true)
	for _, tc := range []struct {
		name string
		m    *metrics.Metrics
		want string
	}{
		{"a", a, `keyhole_decisions_total{action="read",outcome="deny"} 2`},
		{"b", b, `keyhole_decisions_total{action="read",outcome="allow"} 1`},
	} {
		err := testutil.GatherAndCompare(tc.m.Registry(), strings.NewReader(`
# HELP keyhole_decisions_total Authorization decisions written to the audit log, by action and outcome (allow, deny).
# TYPE keyhole_decisions_total counter
`+tc.want+"\n"), "keyhole_decisions_total")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if n, err := testutil.GatherAndCount(prometheus.DefaultGatherer, "keyhole_decisions_total"); err != nil || n != 0 {
		t.Errorf("default registry has %d keyhole_decisions_total series (%v), want 0", n, err)
	}
}

// TestSessionLabels: a session that ran nothing is "none"/"none", and the
// open gauge follows opens and ends.
func TestSessionLabels(t *testing.T) {
	m := metrics.New()
	m.SessionOpened()
	m.SessionOpened()
	m.SessionEnded("", -1)
	m.SessionEnded("script", 124)
	err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP keyhole_sessions_open Session channels open now.
# TYPE keyhole_sessions_open gauge
keyhole_sessions_open 0
# HELP keyhole_sessions_total Sessions ended, by transport (script, sftp, none) and exit status (none when no script ran).
# TYPE keyhole_sessions_total counter
keyhole_sessions_total{exit="124",transport="script"} 1
keyhole_sessions_total{exit="none",transport="none"} 1
`), "keyhole_sessions_open", "keyhole_sessions_total")
	if err != nil {
		t.Error(err)
	}
}

// TestPolicyVersionSeries: only the version in force has a series; a
// refused reload keeps it and sets the last-reload gauge to 0.
func TestPolicyVersionSeries(t *testing.T) {
	m := metrics.New()
	m.PolicyLoaded("v1")
	m.PolicyReloaded("v2", nil)
	m.PolicyReloaded("v2", errors.New("refused"))
	err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP keyhole_policy_info The policy set in force: 1, with its version as a label.
# TYPE keyhole_policy_info gauge
keyhole_policy_info{version="v2"} 1
# HELP keyhole_policy_last_reload_ok 1 when the last policy reload (or the load at start) succeeded, 0 when it was refused.
# TYPE keyhole_policy_last_reload_ok gauge
keyhole_policy_last_reload_ok 0
# HELP keyhole_policy_reloads_total Policy reloads, by result (ok: loaded or unchanged; failed: refused, the last good set kept).
# TYPE keyhole_policy_reloads_total counter
keyhole_policy_reloads_total{result="failed"} 1
keyhole_policy_reloads_total{result="ok"} 1
`), "keyhole_policy_info", "keyhole_policy_last_reload_ok", "keyhole_policy_reloads_total")
	if err != nil {
		t.Error(err)
	}
}

// get fetches url without keeping the connection.
func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServerServesOnlyMetrics: GET /metrics answers; other paths and
// methods do not, and the server keeps serving after them.
func TestServerServesOnlyMetrics(t *testing.T) {
	m := metrics.New()
	m.LimitHit("wall")
	s, err := metrics.Listen("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr()
	for _, tc := range []struct {
		name, method, path string
		status             int
	}{
		{"root", "GET", "/", http.StatusNotFound},
		{"below-metrics", "GET", "/metrics/x", http.StatusNotFound},
		{"debug-pprof", "GET", "/debug/pprof/", http.StatusNotFound},
		{"post", "POST", "/metrics", http.StatusMethodNotAllowed},
		{"dot-dot", "GET", "/x/../metrics", http.StatusOK}, // redirected to the clean path, /metrics
		{"metrics", "GET", "/metrics", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, tc.method, base+tc.path)
			if status != tc.status {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, status, tc.status)
			}
			if status == http.StatusOK && !strings.Contains(body, `keyhole_limit_hits_total{limit="wall"} 1`) {
				t.Errorf("%s %s: body has no limit hit:\n%s", tc.method, tc.path, body)
			}
		})
	}
}

// TestServerListenErrors: a taken address is an error naming it; a
// listener that fails under the server is reported on Done, and Close is
// not.
func TestServerListenErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, err := metrics.Listen(taken.Addr().String(), metrics.New()); err == nil ||
		!strings.Contains(err.Error(), "metrics: listen tcp "+taken.Addr().String()) {
		t.Errorf("Listen on a taken address: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := metrics.Serve(ln, metrics.New())
	ln.Close() // fails under the server
	if err := <-s.Done(); err == nil || !strings.HasPrefix(err.Error(), "metrics: serve: ") {
		t.Errorf("Done after the listener failed: %v", err)
	}
	s.Close()

	s, err = metrics.Listen("127.0.0.1:0", metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := <-s.Done(); err != nil {
		t.Errorf("Done after Close: %v", err)
	}
}
