package sshserver_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// dial connects an x/crypto client as login with the default certificate.
func dial(t *testing.T, e *testenv.Env, login string) *gossh.Client {
	t.Helper()
	c, err := gossh.Dial("tcp", e.Addr, e.ClientConfig(login, e.UserSigner(t)))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stillServes checks that a new client can run a script.
func stillServes(t *testing.T, e *testenv.Env) {
	t.Helper()
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatalf("server stopped serving: %v", err)
	}
	defer s.Close()
	out, err := s.Output(`print("alive")`)
	if err != nil || string(out) != "alive\n" {
		t.Fatalf("server stopped serving: %q %v", out, err)
	}
}

func refusedLines(e *testenv.Env, t *testing.T, request string) int {
	n := 0
	for _, ev := range e.Audit(t) {
		if ev["event"] == "request.refused" && ev["request"] == request {
			n++
		}
	}
	return n
}

func TestSessionRequestsRefused(t *testing.T) {
	e := startEnv(t, sshserver.Limits{})
	c := dial(t, e, "logs")
	tests := []struct {
		name    string
		req     string
		payload []byte
	}{
		{"shell", "shell", nil},
		{"env", "env", gossh.Marshal(struct{ Name, Value string }{"LD_PRELOAD", "/tmp/x.so"})},
		{"x11-req", "x11-req", gossh.Marshal(struct {
			Single        bool
			Proto, Cookie string
			Screen        uint32
		}{false, "MIT-MAGIC-COOKIE-1", "00", 0})},
		{"agent-forwarding", "auth-agent-req@openssh.com", nil},
		{"unknown-subsystem", "subsystem", gossh.Marshal(struct{ Name string }{"sftp-nope"})},
		{"unknown-request", "made-up@example.com", nil},
		{"malformed-exec", "exec", []byte{0, 0, 0, 9, 'x'}},
		{"signal-before-start", "signal", gossh.Marshal(struct{ Sig string }{"KILL"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			before := refusedLines(e, t, tc.req)
			ok, err := s.SendRequest(tc.req, true, tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				t.Fatalf("%s request was granted", tc.req)
			}
			if got := refusedLines(e, t, tc.req); got != before+1 {
				t.Errorf("request.refused lines for %s: %d, want %d", tc.req, got, before+1)
			}
		})
	}
	stillServes(t, e)
}

func TestChannelsAndGlobalRequestsRefused(t *testing.T) {
	e := startEnv(t, sshserver.Limits{})
	c := dial(t, e, "logs")
	// Local port forwarding opens a direct-tcpip channel.
	if _, err := c.Dial("tcp", "127.0.0.1:22"); err == nil {
		t.Error("direct-tcpip channel was accepted")
	}
	// Remote port forwarding is a tcpip-forward global request.
	if l, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
		t.Error("tcpip-forward was granted")
	}
	if _, _, err := c.OpenChannel("x11", nil); err == nil {
		t.Error("x11 channel was accepted")
	}
	if _, _, err := c.OpenChannel("auth-agent@openssh.com", nil); err == nil {
		t.Error("agent channel was accepted")
	}
	for _, req := range []string{"channel direct-tcpip", "tcpip-forward", "channel x11", "channel auth-agent@openssh.com"} {
		if refusedLines(e, t, req) != 1 {
			t.Errorf("want one request.refused line for %q", req)
		}
	}
	stillServes(t, e)
}

func TestStockSSHShellAndForwardRefused(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	e := startEnv(t, sshserver.Limits{})
	// No command: the client asks for a shell, which is refused.
	res := testenv.SSH(t, e.KnownHosts, e.Addr, "logs", e.UserKey, e.UserCert, "-T", "")
	if res.Exit == 0 {
		t.Errorf("shell session exited 0: %+v", res)
	}
	if refusedLines(e, t, "shell") != 1 {
		t.Errorf("want one request.refused line for shell")
	}
	// … and it says what keyhole takes instead.
	const hint = "keyhole: no shell here; send a Starlark script: ssh user@host 'print(1)', or use subsystem starlark or keyhole\n"
	if !strings.Contains(res.Stderr, hint) {
		t.Errorf("shell refusal: stderr %q lacks %q", res.Stderr, hint)
	}
	// So does a subsystem keyhole does not serve, and a forced terminal
	// gets the line with CRLF.
	res = testenv.SSH(t, e.KnownHosts, e.Addr, "logs", e.UserKey, e.UserCert, "-s", "nope")
	if res.Exit == 0 || !strings.Contains(res.Stderr, `keyhole: no subsystem "nope" here; send a Starlark script:`) {
		t.Errorf("unknown subsystem: exit %d stderr %q", res.Exit, res.Stderr)
	}
	res = testenv.SSH(t, e.KnownHosts, e.Addr, "logs", e.UserKey, e.UserCert, "-tt", "")
	if res.Exit == 0 || !strings.Contains(res.Stderr, strings.TrimSuffix(hint, "\n")+"\r\n") {
		t.Errorf("shell refusal with -tt: exit %d stderr %q", res.Exit, res.Stderr)
	}
	// Remote forwarding with ExitOnForwardFailure: the client gives up.
	res = e.SSH(t, "logs", "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:9", `print(1)`)
	if res.Exit != 255 || !strings.Contains(res.Stderr, "forwarding failed") {
		t.Errorf("remote forward: exit %d, stderr %q", res.Exit, res.Stderr)
	}
	stillServes(t, e)
}

func TestStockSSHForcedTTY(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	e := startEnv(t, sshserver.Limits{})
	res := e.SSH(t, "logs", "-tt", `print(1)
print("two")`)
	if res.Exit != 0 || res.Stdout != "1\r\ntwo\r\n" {
		t.Errorf("ssh -tt: exit %d stdout %q stderr %q", res.Exit, res.Stdout, res.Stderr)
	}
	ev := e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "request.granted" })
	if ev["request"] != "pty-req" {
		t.Errorf("granted request = %v", ev["request"])
	}
	stillServes(t, e)
}

func TestStockSSHAuthRefused(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	e := startEnv(t, sshserver.Limits{})
	otherCA := testenv.NewKey(t, e.Dir, "other-ca")
	tests := []struct {
		name, login, reason string
		cert                func(key string) string
	}{
		{"expired", "logs", "expired", func(key string) string {
			return testenv.Cert(t, e.CA, key+".pub", "agent-7", "logs", "-V", "-2h:-1h")
		}},
		{"not-yet-valid", "logs", "not yet valid", func(key string) string {
			return testenv.Cert(t, e.CA, key+".pub", "agent-7", "logs", "-V", "+1h:+2h")
		}},
		{"other-ca", "logs", "unknown CA", func(key string) string {
			return testenv.Cert(t, otherCA, key+".pub", "agent-7", "logs", "-V", "-5m:+1h")
		}},
		{"login-not-a-principal", "root", "principal not allowed", func(key string) string {
			return testenv.Cert(t, e.CA, key+".pub", "agent-7", "logs", "-V", "-5m:+1h")
		}},
		{"no-principals", "logs", "no principals", func(key string) string {
			return testenv.Cert(t, e.CA, key+".pub", "agent-7", "", "-V", "-5m:+1h")
		}},
		{"force-command", "logs", "unsupported critical option", func(key string) string {
			return testenv.Cert(t, e.CA, key+".pub", "agent-7", "logs", "-V", "-5m:+1h", "-O", "force-command=/bin/sh")
		}},
		{"source-address", "logs", "source address", func(key string) string {
			return testenv.Cert(t, e.CA, key+".pub", "agent-7", "logs", "-V", "-5m:+1h", "-O", "source-address=10.9.9.0/24")
		}},
		{"plain-key", "logs", "not a certificate", func(string) string { return "" }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := testenv.NewKey(t, e.Dir, fmt.Sprintf("k%d", i))
			cert := tc.cert(key)
			res := testenv.SSH(t, e.KnownHosts, e.Addr, tc.login, key, cert, `print("in")`)
			if res.Exit != 255 || strings.Contains(res.Stdout, "in") {
				t.Fatalf("not refused: exit %d stdout %q stderr %q", res.Exit, res.Stdout, res.Stderr)
			}
			if !strings.Contains(res.Stderr, "Permission denied") {
				t.Errorf("stderr = %q, want a generic refusal", res.Stderr)
			}
			found := false
			for _, ev := range e.Audit(t) {
				if ev["event"] == "auth.refused" && strings.Contains(fmt.Sprint(ev["reason"]), tc.reason) &&
					ev["source"] == "127.0.0.1" && strings.HasPrefix(fmt.Sprint(ev["fingerprint"]), "SHA256:") {
					found = true
				}
			}
			if !found {
				t.Errorf("no auth.refused line with reason %q in %v", tc.reason, e.Audit(t))
			}
		})
	}
	stillServes(t, e)
}

func TestNoneAndKeyboardInteractiveRefused(t *testing.T) {
	e := startEnv(t, sshserver.Limits{})
	for name, auth := range map[string][]gossh.AuthMethod{
		"none": nil,
		"keyboard-interactive": {gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			return nil, nil
		})},
		"password": {gossh.Password("hunter2")},
	} {
		cfg := &gossh.ClientConfig{User: "logs", Auth: auth, HostKeyCallback: gossh.FixedHostKey(e.HostKey), Timeout: 5 * time.Second}
		if c, err := gossh.Dial("tcp", e.Addr, cfg); err == nil {
			c.Close()
			t.Errorf("%s authentication was accepted", name)
		}
	}
	stillServes(t, e)
}

func TestEndlessLoopHitsWallLimit(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	e := startEnv(t, sshserver.Limits{MaxWall: 500 * time.Millisecond, MaxSteps: 1 << 62})
	res := e.SSH(t, "logs", `while True: pass`)
	if res.Exit != 124 || !strings.Contains(res.Stderr, "LIMIT_EXCEEDED: wall-clock limit") {
		t.Errorf("exit %d stderr %q", res.Exit, res.Stderr)
	}
	stillServes(t, e)
}

func TestStepLimit(t *testing.T) {
	e := startEnv(t, sshserver.Limits{MaxSteps: 10000})
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stderr strings.Builder
	s.Stderr = &stderr
	err = s.Run(`while True: pass`)
	var ee *gossh.ExitError
	if !asExit(err, &ee) || ee.ExitStatus() != 124 || !strings.Contains(stderr.String(), "step limit") {
		t.Errorf("err %v stderr %q", err, stderr.String())
	}
	stillServes(t, e)
}

func TestOutputLimit(t *testing.T) {
	e := startEnv(t, sshserver.Limits{MaxOutput: 1000})
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr strings.Builder
	s.Stdout, s.Stderr = &stdout, &stderr
	err = s.Run(`for i in range(1000): print("x" * 50)`)
	var ee *gossh.ExitError
	if !asExit(err, &ee) || ee.ExitStatus() != 124 || !strings.Contains(stderr.String(), "output limit") {
		t.Errorf("err %v stderr %q", err, stderr.String())
	}
	if stdout.Len() > 1000 {
		t.Errorf("printed %d bytes past a 1000-byte cap", stdout.Len())
	}
}

// runSubsystem opens a session channel, asks for subsystem name, sends
// stdin and returns stdout, stderr and the exit status.
func runSubsystem(t *testing.T, c *gossh.Client, name, stdin string) (string, string, int) {
	t.Helper()
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ok, err := ch.SendRequest("subsystem", true, gossh.Marshal(struct{ Name string }{name}))
	if err != nil || !ok {
		t.Fatalf("subsystem %s refused: %v", name, err)
	}
	exit := make(chan int, 1)
	go func() {
		code := -1
		for r := range reqs {
			if r.Type == "exit-status" && len(r.Payload) == 4 {
				code = int(r.Payload[3]) | int(r.Payload[2])<<8
			}
		}
		exit <- code
	}()
	if _, err := io.WriteString(ch, stdin); err != nil {
		t.Fatal(err)
	}
	ch.CloseWrite()
	var stdout, stderr bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&stderr, ch.Stderr()); close(done) }()
	io.Copy(&stdout, ch)
	<-done
	ch.Close()
	return stdout.String(), stderr.String(), <-exit
}

func TestSubsystemStarlark(t *testing.T) {
	e := startEnv(t, sshserver.Limits{MaxScript: 4096})
	c := dial(t, e, "logs")
	out, stderr, code := runSubsystem(t, c, "starlark", fmt.Sprintf("print(len(fs.read(%q)))\n", e.Sandbox+"/logs/app.log"))
	if code != 0 || out != "18\n" {
		t.Errorf("subsystem: exit %d stdout %q stderr %q", code, out, stderr)
	}
	_, stderr, code = runSubsystem(t, c, "starlark", strings.Repeat("#", 5000))
	if code != 124 || !strings.Contains(stderr, "script larger than") {
		t.Errorf("oversized script: exit %d stderr %q", code, stderr)
	}
	stillServes(t, e)
}

func TestHostCertificateRefused(t *testing.T) {
	e := startEnv(t, sshserver.Limits{})
	key := testenv.NewKey(t, e.Dir, "hostish")
	cert := testenv.Cert(t, e.CA, key+".pub", "agent-7", "logs", "-V", "-5m:+1h", "-h")
	if c, err := gossh.Dial("tcp", e.Addr, e.ClientConfig("logs", testenv.CertSigner(t, key, cert))); err == nil {
		c.Close()
		t.Fatal("host certificate accepted as a user certificate")
	}
	e.WaitAudit(t, func(ev map[string]any) bool {
		return ev["event"] == "auth.refused" && strings.HasPrefix(fmt.Sprint(ev["reason"]), "host certificate")
	})
}

// TestOneScriptPerSession checks that a second exec on a session is refused.
func TestOneScriptPerSession(t *testing.T) {
	e := startEnv(t, sshserver.Limits{})
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(`while True: pass`); err != nil {
		t.Fatal(err)
	}
	ok, err := s.SendRequest("exec", true, gossh.Marshal(struct{ Command string }{`print(2)`}))
	if err == nil && ok {
		t.Error("second exec was granted")
	}
}

func TestAuditLineFields(t *testing.T) {
	e := startEnv(t, sshserver.Limits{})
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`fs.read(%q)`, e.Sandbox+"/secrets/token")
	_ = s.Run(script)
	s.Close()
	ev := e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "decision" })
	want := map[string]any{
		"user": "agent-7", "role": "logs", "source": "127.0.0.1", "transport": "script",
		"action": "read", "resource": e.Sandbox + "/secrets/token", "decision": "deny",
	}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("%s = %v, want %v", k, ev[k], v)
		}
	}
	for _, k := range []string{"session", "time", "fingerprint", "policy_version", "script_sha256"} {
		if s, _ := ev[k].(string); s == "" {
			t.Errorf("decision line lacks %s: %v", k, ev)
		}
	}
	if p := fmt.Sprint(ev["policies"]); p != "[no-secrets]" {
		t.Errorf("policies = %s", p)
	}
	end := e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "session.end" })
	if end["exit"] != float64(13) || end["session"] != ev["session"] {
		t.Errorf("session.end = %v", end)
	}
}

func asExit(err error, target **gossh.ExitError) bool {
	ee, ok := err.(*gossh.ExitError)
	if ok {
		*target = ee
	}
	return ok
}
