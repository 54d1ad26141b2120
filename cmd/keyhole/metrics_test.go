package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/keys"
)

// metricsEnv is a server started by startServer with metrics_listen on
// 127.0.0.1:0, and a client for its user.
type metricsEnv struct {
	*reloadEnv
	url string
}

// metricsWritePolicy lets role dev write under out/ (%[1]s: the sandbox).
const metricsWritePolicy = `
@id("dev-out-write")
permit (principal in Keyhole::Role::"dev",
        action in [Keyhole::Action::"write", Keyhole::Action::"create"],
        resource in Keyhole::Dir::"%[1]s/out");
`

// startMetricsEnv starts the "keyhole dev" layout with metricsWritePolicy
// and files (sandbox-relative names) added; auditLog "" means audit.log in
// its directory.
func startMetricsEnv(t *testing.T, limits limitsConfig, files map[string]string, auditLog string) *metricsEnv {
	t.Helper()
	dir := t.TempDir()
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	env, err := makeDevEnv(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policies", "write.cedar"), []byte(fmt.Sprintf(metricsWritePolicy, env.sandbox)), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(env.sandbox, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if auditLog == "" {
		auditLog = filepath.Join(dir, "audit.log")
	}
	// No parked workers: each script gets a worker of its own, so the
	// worker counts below follow from the scripts run.
	noParking := 0
	srv, err := startServer(&config{
		ParkedWorkers:     &noParking,
		Listen:            "127.0.0.1:0",
		HostKey:           filepath.Join(dir, "host_key"),
		TrustedUserCAKeys: filepath.Join(dir, "ca.pub"),
		PolicyDir:         filepath.Join(dir, "policies"),
		AuditLog:          auditLog,
		MetricsListen:     "127.0.0.1:0",
		Limits:            limits,
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if srv.metrics == nil {
		t.Fatal("metrics_listen is set but no metrics endpoint started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.wait(ctx, nil) }()
	maddr := srv.metrics.Addr()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("wait: %v", err)
		}
		srv.close()
		// The endpoint closes with the server.
		if c, err := net.Dial("tcp", maddr); err == nil {
			c.Close()
			t.Errorf("metrics endpoint %s still accepts connections after close", maddr)
		}
	})
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	hk, _, _, _, err := gossh.ParseAuthorizedKey(hostPub)
	if err != nil {
		t.Fatal(err)
	}
	id := filepath.Join(dir, "id_ed25519")
	return &metricsEnv{
		reloadEnv: &reloadEnv{
			dir: dir, pdir: filepath.Join(dir, "policies"), sandbox: env.sandbox, srv: srv,
			client: &gossh.ClientConfig{
				User:            "dev",
				Auth:            []gossh.AuthMethod{gossh.PublicKeys(testenv.CertSigner(t, id, id+"-cert.pub"))},
				HostKeyCallback: gossh.FixedHostKey(hk),
				Timeout:         30 * time.Second,
			},
		},
		url: "http://" + srv.metrics.Addr() + "/metrics",
	}
}

// scrape fetches url over HTTP, without keeping the connection, and
// parses the text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return fams
}

// compareScraped checks the families named by names against the text
// exposition want.
func compareScraped(t *testing.T, fams map[string]*dto.MetricFamily, want string, names ...string) {
	t.Helper()
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, name := range slices.Sorted(maps.Keys(fams)) {
			out = append(out, fams[name])
		}
		return out, nil
	})
	if err := testutil.GatherAndCompare(g, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// value returns the value of the gauge or counter name whose labels
// include labels ("k=v" each), or -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// waitMetric scrapes until cond holds.
func waitMetric(t *testing.T, url, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	var fams map[string]*dto.MetricFamily
	waitFor(t, what, func() bool {
		fams = scrape(t, url)
		return cond(fams)
	})
	return fams
}

// TestMetricsCountSessions runs a known sequence of sessions against the
// real server and checks that every counter on /metrics matches it
// exactly.
func TestMetricsCountSessions(t *testing.T) {
	e := startMetricsEnv(t, limitsConfig{MaxSteps: 200_000, MaxOutput: size{64 << 10}, MaxWall: duration{60 * time.Second},
		MaxRead: size{4 << 10}, MaxWrite: size{1 << 10}, MaxOperations: 20},
		map[string]string{"logs/big.log": strings.Repeat("x", 8<<10), "out/.keep": ""}, "")
	// Before any session: the version in force, no sessions, zeroed
	// result series, a writable audit log.
	fams := scrape(t, e.url)
	version := e.srv.policy.Current().Version()
	compareScraped(t, fams, fmt.Sprintf(`
# HELP keyhole_policy_info The policy set in force: 1, with its version as a label.
# TYPE keyhole_policy_info gauge
keyhole_policy_info{version=%q} 1
# HELP keyhole_policy_reloads_total Policy reloads, by result (ok: loaded or unchanged; failed: refused, the last good set kept).
# TYPE keyhole_policy_reloads_total counter
keyhole_policy_reloads_total{result="failed"} 0
keyhole_policy_reloads_total{result="ok"} 0
# HELP keyhole_sessions_open Session channels open now.
# TYPE keyhole_sessions_open gauge
keyhole_sessions_open 0
# HELP keyhole_audit_log_writable 1 while the audit log takes lines, 0 while it does not (sessions and operations are refused).
# TYPE keyhole_audit_log_writable gauge
keyhole_audit_log_writable 1
`, version), "keyhole_policy_info", "keyhole_policy_reloads_total", "keyhole_sessions_open", "keyhole_audit_log_writable",
		"keyhole_sessions_total", "keyhole_decisions_total", "keyhole_auth_refusals_total", "keyhole_limit_hits_total")
	for _, name := range []string{"go_goroutines", "process_open_fds", "keyhole_worker_pool_size", "keyhole_script_duration_seconds"} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}

	sandbox := e.sandbox
	for _, tc := range []struct {
		name, script string
		exit         int
	}{
		{"allowed-read", fmt.Sprintf("print(fs.read(%q))", sandbox+"/logs/app.log"), 0},
		{"denied-read", fmt.Sprintf("fs.read(%q)", sandbox+"/secrets/token"), 13},
		{"denied-read-caught", fmt.Sprintf("v, err = catch(fs.read, %q)\nprint(err.kind)", sandbox+"/secrets/token"), 0},
		{"script-error", `fail("boom")`, 1},
		{"syntax-error", `print(`, 2},
		{"step-limit", "x = 0\nfor i in range(10000000):\n    x += i", 124},
		{"output-limit", `print("x" * 100000)`, 124},
		{"read-limit", fmt.Sprintf("fs.read(%q)", sandbox+"/logs/big.log"), 124},
		{"write-limit", fmt.Sprintf("fs.write(%q, %q)", sandbox+"/out/a.txt", strings.Repeat("y", 2000)), 124},
		{"operation-limit", fmt.Sprintf("for i in range(30):\n    fs.exists(%q)", sandbox+"/logs/app.log"), 124},
	} {
		exit, stderr, err := e.run(tc.script)
		if err != nil || exit != tc.exit {
			t.Fatalf("%s: exit %d (%v), want %d; stderr %q", tc.name, exit, err, tc.exit, stderr)
		}
	}
	// A key the server does not accept.
	_, stranger, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(stranger)
	if err != nil {
		t.Fatal(err)
	}
	bad := *e.client
	bad.Auth = []gossh.AuthMethod{gossh.PublicKeys(signer)}
	if c, err := gossh.Dial("tcp", e.srv.addr(), &bad); err == nil {
		c.Close()
		t.Fatal("a key the server does not know logged in")
	}
	// A session that runs nothing: opened and closed.
	c, err := gossh.Dial("tcp", e.srv.addr(), e.client)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.Close()

	// Every script session's counters are updated before its client
	// learns the exit status; the empty session ends on its own time,
	// and the pool refills after the last script: ten workers ran the
	// scripts and two wait. A scrape is not one instant (collectors are
	// read one after another), so the steady state is waited for, then
	// every counter compared; a count past it would never match.
	fams = waitMetric(t, e.url, "the empty session to end and the pool to refill", func(f map[string]*dto.MetricFamily) bool {
		return value(f, "keyhole_sessions_open") == 0 && value(f, "keyhole_sessions_total", "transport=none") == 1 &&
			value(f, "keyhole_worker_pool_size") == 2 && value(f, "keyhole_worker_starts_total", "result=ok") == 12
	})
	compareScraped(t, fams, `
# HELP keyhole_sessions_total Sessions ended, by transport (script, sftp, none) and exit status (none when no script ran).
# TYPE keyhole_sessions_total counter
keyhole_sessions_total{exit="0",transport="script"} 2
keyhole_sessions_total{exit="1",transport="script"} 1
keyhole_sessions_total{exit="2",transport="script"} 1
keyhole_sessions_total{exit="13",transport="script"} 1
keyhole_sessions_total{exit="124",transport="script"} 5
keyhole_sessions_total{exit="none",transport="none"} 1
# HELP keyhole_sessions_open Session channels open now.
# TYPE keyhole_sessions_open gauge
keyhole_sessions_open 0
# HELP keyhole_decisions_total Authorization decisions written to the audit log, by action and outcome (allow, deny).
# TYPE keyhole_decisions_total counter
keyhole_decisions_total{action="create",outcome="allow"} 1
keyhole_decisions_total{action="read",outcome="allow"} 2
keyhole_decisions_total{action="read",outcome="deny"} 2
keyhole_decisions_total{action="stat",outcome="allow"} 20
keyhole_decisions_total{action="stat",outcome="deny"} 1
# HELP keyhole_auth_refusals_total Connections or keys refused before authentication completed, by reason.
# TYPE keyhole_auth_refusals_total counter
keyhole_auth_refusals_total{reason="not a certificate"} 1
# HELP keyhole_limit_hits_total Scripts ended with LIMIT_EXCEEDED, by the limit that ended them.
# TYPE keyhole_limit_hits_total counter
keyhole_limit_hits_total{limit="operations"} 1
keyhole_limit_hits_total{limit="output"} 1
keyhole_limit_hits_total{limit="read"} 1
keyhole_limit_hits_total{limit="steps"} 1
keyhole_limit_hits_total{limit="write"} 1
# HELP keyhole_worker_starts_total Worker processes started, by result (ok, failed).
# TYPE keyhole_worker_starts_total counter
keyhole_worker_starts_total{result="failed"} 0
keyhole_worker_starts_total{result="ok"} 12
# HELP keyhole_worker_pool_size Started workers idle in the pool, waiting for a script.
# TYPE keyhole_worker_pool_size gauge
keyhole_worker_pool_size 2
`, "keyhole_sessions_total", "keyhole_sessions_open", "keyhole_decisions_total", "keyhole_auth_refusals_total",
		"keyhole_limit_hits_total", "keyhole_worker_starts_total", "keyhole_worker_pool_size", "keyhole_sessions_refused_total")
	// Ten scripts ran in a worker, each observed once; each took a
	// worker, and two more wait in the pool (the starts above).
	if n := value(fams, "keyhole_script_duration_seconds"); n != 10 {
		t.Errorf("keyhole_script_duration_seconds_count = %v, want 10", n)
	}
	// The decision counters agree with the audit log's decision lines.
	var allow, deny int
	for _, ev := range e.auditEvents(t) {
		if ev["event"] == "decision" {
			if ev["decision"] == "allow" {
				allow++
			} else {
				deny++
			}
		}
	}
	if allow != 23 || deny != 3 {
		t.Errorf("audit log has %d allow and %d deny decision lines, want 23 and 3", allow, deny)
	}
}

// TestMetricsAuditLogUnwritable runs the server with its audit log on
// /dev/full: the first session is refused when its session.start line
// fails, every later key is refused, and the gauge says the log is
// unwritable.
func TestMetricsAuditLogUnwritable(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	e := startMetricsEnv(t, limitsConfig{}, nil, "/dev/full")
	c, err := gossh.Dial("tcp", e.srv.addr(), e.client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "audit log unwritable") {
		t.Errorf("session on a full audit log: %v, want refused", err)
	}
	c.Close()
	if c, err := gossh.Dial("tcp", e.srv.addr(), e.client); err == nil {
		c.Close()
		t.Fatal("logged in while the audit log is unwritable")
	}
	compareScraped(t, scrape(t, e.url), `
# HELP keyhole_audit_log_writable 1 while the audit log takes lines, 0 while it does not (sessions and operations are refused).
# TYPE keyhole_audit_log_writable gauge
keyhole_audit_log_writable 0
# HELP keyhole_auth_refusals_total Connections or keys refused before authentication completed, by reason.
# TYPE keyhole_auth_refusals_total counter
keyhole_auth_refusals_total{reason="audit log unwritable"} 1
# HELP keyhole_sessions_refused_total Session channels refused before they opened, by reason.
# TYPE keyhole_sessions_refused_total counter
keyhole_sessions_refused_total{reason="audit log unwritable"} 1
# HELP keyhole_sessions_open Session channels open now.
# TYPE keyhole_sessions_open gauge
keyhole_sessions_open 0
`, "keyhole_audit_log_writable", "keyhole_auth_refusals_total", "keyhole_sessions_refused_total", "keyhole_sessions_open",
		"keyhole_sessions_total")
}

// TestMetricsPolicyReloads changes the policy directory under the
// running server: a bad set is refused (failed, the version kept), a good
// one loaded (ok, the new version the only one), and SIGHUP's reload of
// an unchanged directory counts as ok.
func TestMetricsPolicyReloads(t *testing.T) {
	e := startMetricsEnv(t, limitsConfig{}, nil, "")
	first := e.srv.policy.Current().Version()
	bad := filepath.Join(e.pdir, "bad.cedar")
	if err := os.WriteFile(bad, []byte("permit (principal, action, resource"), 0o644); err != nil {
		t.Fatal(err)
	}
	fams := waitMetric(t, e.url, "the refused reload", func(f map[string]*dto.MetricFamily) bool {
		return value(f, "keyhole_policy_reloads_total", "result=failed") == 1
	})
	compareScraped(t, fams, fmt.Sprintf(`
# HELP keyhole_policy_info The policy set in force: 1, with its version as a label.
# TYPE keyhole_policy_info gauge
keyhole_policy_info{version=%q} 1
# HELP keyhole_policy_last_reload_ok 1 when the last policy reload (or the load at start) succeeded, 0 when it was refused.
# TYPE keyhole_policy_last_reload_ok gauge
keyhole_policy_last_reload_ok 0
# HELP keyhole_policy_reloads_total Policy reloads, by result (ok: loaded or unchanged; failed: refused, the last good set kept).
# TYPE keyhole_policy_reloads_total counter
keyhole_policy_reloads_total{result="failed"} 1
keyhole_policy_reloads_total{result="ok"} 0
`, first), "keyhole_policy_info", "keyhole_policy_last_reload_ok", "keyhole_policy_reloads_total")

	if err := os.WriteFile(bad, []byte("@id(\"more\")\nforbid (principal, action, resource in Keyhole::Dir::\"/etc\");\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, e.url, "the good reload", func(f map[string]*dto.MetricFamily) bool {
		return value(f, "keyhole_policy_reloads_total", "result=ok") == 1
	})
	second := e.srv.policy.Current().Version()
	if second == first {
		t.Fatal("the policy version did not change")
	}
	// What a SIGHUP does: the directory is read again, unchanged.
	if _, _, err := e.srv.policy.Reload("sighup"); err != nil {
		t.Fatal(err)
	}
	compareScraped(t, scrape(t, e.url), fmt.Sprintf(`
# HELP keyhole_policy_info The policy set in force: 1, with its version as a label.
# TYPE keyhole_policy_info gauge
keyhole_policy_info{version=%q} 1
# HELP keyhole_policy_last_reload_ok 1 when the last policy reload (or the load at start) succeeded, 0 when it was refused.
# TYPE keyhole_policy_last_reload_ok gauge
keyhole_policy_last_reload_ok 1
# HELP keyhole_policy_reloads_total Policy reloads, by result (ok: loaded or unchanged; failed: refused, the last good set kept).
# TYPE keyhole_policy_reloads_total counter
keyhole_policy_reloads_total{result="failed"} 1
keyhole_policy_reloads_total{result="ok"} 2
`, second), "keyhole_policy_info", "keyhole_policy_last_reload_ok", "keyhole_policy_reloads_total")
}

// TestServeMetricsListenInUse: serve stops with an error naming
// metrics_listen when its address is taken, and leaves nothing running
// (the package's leak check sees any goroutine left behind).
func TestServeMetricsListenInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	if _, err := makeDevEnv(dir); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "keyhole.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen = "127.0.0.1:0"
metrics_listen = %q
host_key = "host_key"
trusted_user_ca_keys = "ca.pub"
policy_dir = "policies"
audit_log = "audit.log"
`, taken.Addr().String())), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	err = cmdServe(context.Background(), []string{"--config", cfg, "--addr-file", filepath.Join(dir, "addr")}, io.Discard, &stderr)
	want := "metrics_listen: metrics: listen tcp " + taken.Addr().String() + ": bind: address already in use"
	if err == nil || err.Error() != want {
		t.Fatalf("serve with metrics_listen taken: %v, want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "addr")); err == nil {
		t.Error("serve wrote its address although it did not start")
	}
	if strings.Contains(stderr.String(), "listening on") {
		t.Errorf("serve said it was listening: %s", stderr.String())
	}
}

// TestMetricsSessionCap: a session past limits.max_sessions is counted as
// refused, with the cap's reason and without its number, and the open
// gauge shows the one that holds the slot.
func TestMetricsSessionCap(t *testing.T) {
	e := startMetricsEnv(t, limitsConfig{MaxSessions: 1, MaxWall: duration{60 * time.Second}, MaxSteps: 1 << 40}, nil, "")
	c, err := gossh.Dial("tcp", e.srv.addr(), e.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	busy, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := busy.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := busy.Start("print(\"running\")\nwhile True:\n    pass"); err != nil {
		t.Fatal(err)
	}
	// The script runs once its first line arrives.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "running\n" {
		t.Fatalf("busy script: %q, %v", line, err)
	}
	if _, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "too many sessions") {
		t.Fatalf("second session: %v, want refused", err)
	}
	compareScraped(t, scrape(t, e.url), `
# HELP keyhole_sessions_refused_total Session channels refused before they opened, by reason.
# TYPE keyhole_sessions_refused_total counter
keyhole_sessions_refused_total{reason="too many sessions"} 1
# HELP keyhole_sessions_open Session channels open now.
# TYPE keyhole_sessions_open gauge
keyhole_sessions_open 1
`, "keyhole_sessions_refused_total", "keyhole_sessions_open")
	busy.Close()
	// Ended by its client: INTERNAL, "session ended".
	waitMetric(t, e.url, "the busy session to end", func(f map[string]*dto.MetricFamily) bool {
		return value(f, "keyhole_sessions_open") == 0 && value(f, "keyhole_sessions_total", "transport=script", "exit=125") == 1
	})
}
