package sshserver_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// spinLimits let a `while True: pass` script run until its session ends.
var spinLimits = sshserver.Limits{MaxSteps: 1 << 62, MaxWall: 5 * time.Minute}

// spin opens a session on c running a script that never ends, and
// returns it; closing it ends the script.
func spin(t *testing.T, c *gossh.Client) *gossh.Session {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Start("while True: pass"); err != nil {
		t.Fatalf("start script: %v", err)
	}
	return s
}

// sessionEnds counts the session.end lines of the audit log.
func sessionEnds(t *testing.T, e *testenv.Env) int {
	n := 0
	for _, ev := range e.Audit(t) {
		if ev["event"] == "session.end" {
			n++
		}
	}
	return n
}

// waitSessionEnds waits until the audit log has n session.end lines.
func waitSessionEnds(t *testing.T, e *testenv.Env, n int) {
	t.Helper()
	e.WaitAudit(t, func(map[string]any) bool { return sessionEnds(t, e) >= n })
}

// refusedSession checks that a session for the stock ssh client is
// refused with reason, and that the refusal is audited once more.
func refusedSession(t *testing.T, e *testenv.Env, key, cert, reason string) {
	t.Helper()
	before := refusedLines(e, t, "channel session")
	// -v: the client logs the server's reason for refusing the channel
	// only at that level.
	res := testenv.SSH(t, e.KnownHosts, e.Addr, "logs", key, cert, "-v", `print("must not run")`)
	if res.Exit == 0 || strings.Contains(res.Stdout, "must not run") || !strings.Contains(res.Stderr, reason) {
		t.Fatalf("session past the cap: exit %d, stdout %q, stderr %q; want it refused with %q", res.Exit, res.Stdout, res.Stderr, reason)
	}
	ev := e.WaitAudit(t, func(ev map[string]any) bool {
		return ev["event"] == "request.refused" && ev["request"] == "channel session" && refusedLines(e, t, "channel session") > before
	})
	if ev["reason"] != reason || ev["user"] == "" {
		t.Errorf("refusal audit line %v, want reason %q and the user", ev, reason)
	}
}

func TestMaxSessions(t *testing.T) {
	t.Parallel()
	lim := spinLimits
	lim.MaxSessions = 2
	e := startEnv(t, lim)
	c := dial(t, e, "logs")
	first := spin(t, c)
	spin(t, c)

	// A third session, on the same connection or another one, is refused.
	if _, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "too many sessions (limit 2)") {
		t.Fatalf("third session on the same connection: %v, want it refused", err)
	}
	refusedSession(t, e, e.UserKey, e.UserCert, "too many sessions (limit 2)")

	// Ending one frees its slot.
	ends := sessionEnds(t, e)
	first.Close()
	waitSessionEnds(t, e, ends+1)
	stillServes(t, e)
}

func TestMaxSessionsPerUser(t *testing.T) {
	t.Parallel()
	lim := spinLimits
	lim.MaxSessionsPerUser = 1
	e := startEnv(t, lim)
	held := spin(t, dial(t, e, "logs"))

	// agent-7 is at its cap, on any connection.
	refusedSession(t, e, e.UserKey, e.UserCert, "too many sessions for this user (limit 1)")

	// agent-8 is not.
	key8 := testenv.NewKey(t, e.Dir, "user8")
	cert8 := testenv.Cert(t, e.CA, key8+".pub", "agent-8", "logs", "-V", "-5m:+1h")
	if res := testenv.SSH(t, e.KnownHosts, e.Addr, "logs", key8, cert8, `print("ok")`); res.Exit != 0 || res.Stdout != "ok\n" {
		t.Fatalf("another user's session: exit %d, %q, %q", res.Exit, res.Stdout, res.Stderr)
	}

	ends := sessionEnds(t, e)
	held.Close()
	waitSessionEnds(t, e, ends+1)
	stillServes(t, e)
}

// bytesEnv is a server whose policy also lets role logs write and create
// below out/ and run cat.
func bytesEnv(t *testing.T, limits sshserver.Limits, serviceManager []string) *testenv.Env {
	t.Helper()
	cat, err := filepath.EvalSymlinks("/bin/cat")
	if err != nil {
		t.Fatal(err)
	}
	e := testenv.Start(t, testenv.Options{
		Policies: map[string]string{
			"logs.cedar": logsPolicy,
			"out.cedar": `@id("out-write") permit (principal in Keyhole::Role::"logs",
	action in [Keyhole::Action::"write", Keyhole::Action::"create", Keyhole::Action::"read"],
	resource in Keyhole::Dir::"{{SANDBOX}}/out");
@id("cat") permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::"` + cat + `");
@id("web") permit (principal, action == Keyhole::Action::"restart", resource == Keyhole::Service::"web");`,
		},
		Files: map[string]string{
			"logs/big.log":   strings.Repeat("0123456789", 500), // 5000 bytes
			"secrets/token":  "TOPSECRET\n",
			"out/.keep":      "",
			"logs/small.log": "small\n",
		},
		Limits:         limits,
		ServiceManager: serviceManager,
	})
	return e
}

func TestByteLimits(t *testing.T) {
	t.Parallel()
	e := bytesEnv(t, sshserver.Limits{MaxRead: 8000, MaxWrite: 1000}, nil)
	sb := e.Sandbox
	cases := []struct {
		name, script, stderr string
		absent               string // a file the script must not have written
	}{
		{name: "read", script: fmt.Sprintf(`fs.read(%q); fs.read(%q); print("unreached")`, sb+"/logs/big.log", sb+"/logs/big.log"),
			stderr: "LIMIT_EXCEEDED: read " + sb + "/logs/big.log: the script's read limit of 8000 bytes is exceeded\n"},
		{name: "read-caught", script: fmt.Sprintf(`fs.read(%q); catch(fs.read, %q); print("unreached")`, sb+"/logs/big.log", sb+"/logs/big.log"),
			stderr: "LIMIT_EXCEEDED: read " + sb + "/logs/big.log: the script's read limit of 8000 bytes is exceeded\n"},
		{name: "write", script: fmt.Sprintf(`fs.write(%q, "x" * 600); fs.write(%q, "x" * 600); print("unreached")`, sb+"/out/a", sb+"/out/b"),
			stderr: "LIMIT_EXCEEDED: create " + sb + "/out/b: the script's write limit of 1000 bytes would be exceeded\n", absent: "out/b"},
		{name: "stdin", script: fmt.Sprintf(`fs.write(%q, "x" * 600); proc.run(["cat"], stdin = "y" * 600)`, sb+"/out/c"),
			stderr: "write limit of 1000 bytes would be exceeded\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := e.SSH(t, "logs", tc.script)
			if res.Exit != 124 || res.Stdout != "" || !strings.HasSuffix(res.Stderr, tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 124 and %q", res.Exit, res.Stdout, res.Stderr, tc.stderr)
			}
			if tc.absent != "" {
				if _, err := os.Stat(filepath.Join(sb, tc.absent)); err == nil {
					t.Errorf("%s was written past the write limit", tc.absent)
				}
			}
		})
	}
	ends := 0
	for _, ev := range e.Audit(t) {
		if ev["event"] == "session.end" && ev["exit"] == float64(124) {
			ends++
		}
	}
	if ends != len(cases) {
		t.Errorf("%d session.end lines with exit 124, want %d", ends, len(cases))
	}
	stillServes(t, e)
}

func TestStructuredStatsCountBytes(t *testing.T) {
	t.Parallel()
	e := bytesEnv(t, sshserver.Limits{}, nil)
	sb := e.Sandbox
	script := fmt.Sprintf(`
big = %q
fs.read(big)                              # 5000 read
fs.lines(big)                             # 5000 read
fs.tail(%q, 1)                            # 6 read
fs.write(%q, "w" * 1234)                  # 1234 written
fs.append(%q, "a" * 66)                   # 66 written
r = proc.run(["cat"], stdin = "hello")    # 5 written, 5 read
catch(fs.read, %q)                        # denied: nothing moved
result(r.stdout)
`, sb+"/logs/big.log", sb+"/logs/small.log", sb+"/out/w", sb+"/out/w", sb+"/secrets/token")
	req := fmt.Sprintf(`{"script": %q}`, script)
	lines, exit := structured(t, e, req+"\n")
	if exit != 0 || len(lines) == 0 {
		t.Fatalf("exit %d, lines %v", exit, lines)
	}
	end := lines[len(lines)-1]
	stats, _ := end["stats"].(map[string]any)
	want := map[string]float64{"bytes_read": 5000 + 5000 + 6 + 5, "bytes_written": 1234 + 66 + 5, "allowed": 6, "denied": 1}
	for k, v := range want {
		if stats[k] != v {
			t.Errorf("stats.%s = %v, want %v (end line %v)", k, stats[k], v, end)
		}
	}
	if end["result"] != "hello" {
		t.Errorf("result %v", end["result"])
	}
}

func TestServiceManagerConfigured(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(dir, "argv")
	manager := filepath.Join(dir, "fake-systemctl")
	// It resolves every name to NAME.service and records the other calls.
	script := "#!/bin/sh\nfor last in \"$@\"; do :; done\n[ \"$2\" = show ] && { echo \"$last.service\"; exit 0; }\n" +
		"printf '%s\\n' \"$@\" >> " + record + "\necho restarted\n"
	if err := os.WriteFile(manager, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e := bytesEnv(t, sshserver.Limits{}, []string{manager, "--no-ask-password"})

	res := e.SSH(t, "logs", `r = svc.restart("web"); print(r.exit, r.stdout.strip(), r.path)`)
	if res.Exit != 0 || res.Stdout != "0 restarted "+manager+"\n" {
		t.Fatalf("svc.restart: exit %d, stdout %q, stderr %q", res.Exit, res.Stdout, res.Stderr)
	}
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the configured service manager did not run: %v", err)
	}
	if want := "--no-ask-password\nrestart\n--\nweb.service\n"; string(got) != want {
		t.Errorf("service manager argv = %q, want %q", got, want)
	}

	// A service the policy does not name: denied, and the manager is not run.
	res = e.SSH(t, "logs", `svc.restart("db")`)
	if res.Exit != 13 || !strings.Contains(res.Stderr, `ACCESS_DENIED: restart db`) {
		t.Fatalf("svc.restart(db): exit %d, stderr %q", res.Exit, res.Stderr)
	}
	if got2, _ := os.ReadFile(record); string(got2) != string(got) {
		t.Errorf("the manager ran for a denied service: %q", got2)
	}
	e.WaitAudit(t, func(ev map[string]any) bool {
		return ev["event"] == "decision" && ev["action"] == "restart" && ev["resource"] == "db" && ev["decision"] == "deny"
	})
}

// TestSessionEndBeforeExitStatus: a client that has the exit status of
// its session finds the session's session.end line already in the audit
// log (DESIGN.md invariant 7): the server writes it before it sends the
// status.
func TestSessionEndBeforeExitStatus(t *testing.T) {
	t.Parallel()
	e := bytesEnv(t, sshserver.Limits{}, nil)
	want := map[float64]int{} // session.end lines by exit status
	for i := 1; i <= 6; i++ {
		script := fmt.Sprintf("print(%d)", i)
		if i%2 == 0 {
			script = `fs.read("/nonexistent/x")` // ends with an error line too
		}
		res := e.SSH(t, "logs", script)
		want[float64(res.Exit)]++
		got := map[float64]int{}
		for _, ev := range e.Audit(t) {
			if ev["event"] == "session.end" {
				exit, _ := ev["exit"].(float64)
				got[exit]++
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after session %d (exit %d): session.end lines by exit %v, want %v", i, res.Exit, got, want)
		}
	}
}
