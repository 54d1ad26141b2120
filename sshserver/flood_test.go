package sshserver_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

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

// TestRefusedRequestsCap: a logged-in client that repeats refused requests
// gets MaxRefusedRequests audit lines, then one line saying so, and its
// connection is closed; the server still serves others.
func TestRefusedRequestsCap(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{})
	const tries = 3 * sshserver.MaxRefusedRequests
	for _, tc := range []struct {
		name    string
		request string // as the audit line names it
		send    func(c *gossh.Client, s *gossh.Session) error
	}{
		{"env", "env", func(_ *gossh.Client, s *gossh.Session) error { return s.Setenv("A", "b") }},
		{"pty-req", "pty-req", func(_ *gossh.Client, s *gossh.Session) error {
			return s.RequestPty("xterm", 24, 80, gossh.TerminalModes{})
		}},
		{"x11", "x11-req", func(_ *gossh.Client, s *gossh.Session) error {
			_, err := s.SendRequest("x11-req", true, gossh.Marshal(struct {
				Single        bool
				Proto, Cookie string
				Screen        uint32
			}{false, "MIT-MAGIC-COOKIE-1", "00", 0}))
			return err
		}},
		{"global", "tcpip-forward", func(c *gossh.Client, _ *gossh.Session) error {
			_, _, err := c.SendRequest("tcpip-forward", true, gossh.Marshal(struct {
				Addr string
				Port uint32
			}{"127.0.0.1", 0}))
			return err
		}},
		{"channel", "channel direct-tcpip", func(c *gossh.Client, _ *gossh.Session) error {
			ch, _, err := c.OpenChannel("direct-tcpip", nil)
			if err == nil {
				ch.Close()
			}
			if _, ok := err.(*gossh.OpenChannelError); ok {
				return nil // refused, connection still up
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, e, "logs")
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			before := refusedLines(e, t, tc.request)
			for range tries {
				if tc.send(c, s) == io.EOF {
					break
				}
			}
			waited := make(chan error, 1)
			go func() { waited <- c.Wait() }()
			select {
			case <-waited:
			case <-time.After(10 * time.Second):
				t.Fatal("connection still open after the refusal cap")
			}
			e.WaitAudit(t, func(ev map[string]any) bool {
				return ev["event"] == "request.refused" && ev["request"] == tc.request &&
					strings.Contains(fmt.Sprint(ev["reason"]), "too many refused requests")
			})
			got := refusedLines(e, t, tc.request) - before
			// pty-req: the first is acknowledged, the others refused.
			if want := sshserver.MaxRefusedRequests + 1; got != want {
				t.Errorf("%d request.refused lines for %d requests, want %d", got, tries, want)
			}
		})
	}
	stillServes(t, e)
}

// TestIdleSessionChannelFreesSlot: session channels that never ask for
// exec or a subsystem are closed after the login grace time, with a
// request.refused line, and their slots are free again: two of them
// cannot hold max_sessions forever.
func TestIdleSessionChannelFreesSlot(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{MaxSessions: 2, LoginGrace: 300 * time.Millisecond})
	c := dial(t, e, "logs")
	for range 2 {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// A pty-req does not count as asking for a script.
		if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		out, err := s.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, out); closed <- err }()
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Fatal("idle session channel still open after the login grace time")
		}
	}
	n := 0
	for _, ev := range e.Audit(t) {
		if ev["event"] == "request.refused" && ev["request"] == "channel session" &&
			ev["reason"] == "no exec or subsystem request within 300ms" && ev["user"] == "agent-7" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d audit lines for idle channels closed, want 2: %v", n, e.Audit(t))
	}
	// The slots are free: the same connection runs two scripts at once.
	e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "session.end" })
	var outs [2][]byte
	var errs [2]error
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.NewSession()
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			outs[i], errs[i] = s.Output(`print("in")`)
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil || string(outs[i]) != "in\n" {
			t.Errorf("session %d after idle channels closed: %q %v", i, outs[i], errs[i])
		}
	}
}

// TestMaxConnections: authenticated connections are capped per user id
// and in total; the one past a cap is refused when it authenticates, with
// the reason in a banner and an audit line, and a closed connection gives
// its slot back.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{MaxConnections: 3, MaxConnectionsPerUser: 2})
	other := testenv.NewKey(t, e.Dir, "other")
	otherCert := testenv.Cert(t, e.CA, other+".pub", "agent-8", "logs", "-V", "-5m:+1h")
	signers := map[string]gossh.Signer{"agent-7": e.UserSigner(t), "agent-8": testenv.CertSigner(t, other, otherCert)}
	connect := func(user string) (*gossh.Client, string, error) {
		var banner string
		cfg := e.ClientConfig("logs", signers[user])
		cfg.BannerCallback = func(msg string) error { banner += msg; return nil }
		c, err := gossh.Dial("tcp", e.Addr, cfg)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, banner, err
	}
	steps := []struct {
		user   string
		reason string // "" when the connection is accepted
	}{
		{"agent-7", ""},
		{"agent-7", ""},
		{"agent-7", "too many connections for this user (limit 2)"},
		{"agent-8", ""},
		{"agent-8", "too many connections (limit 3)"},
	}
	var first *gossh.Client
	for i, st := range steps {
		c, banner, err := connect(st.user)
		if st.reason == "" {
			if err != nil {
				t.Fatalf("step %d (%s): %v", i, st.user, err)
			}
			if first == nil {
				first = c
			}
			continue
		}
		if err == nil {
			t.Fatalf("step %d (%s): connection past the cap accepted", i, st.user)
		}
		if !strings.Contains(banner, st.reason) {
			t.Errorf("step %d: banner %q, want %q", i, banner, st.reason)
		}
		e.WaitAudit(t, func(ev map[string]any) bool {
			return ev["event"] == "auth.refused" && ev["reason"] == st.reason && ev["user"] == st.user
		})
	}
	// An idle connection that closes gives its slot back.
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := connect("agent-8")
		if err == nil {
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			if out, err := s.Output(`print("in")`); err != nil || string(out) != "in\n" {
				t.Fatalf("after a slot came back: %q %v", out, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not given back after the connection closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWindowChangesDuringScript: a terminal resized while its script runs
// is part of the acknowledged pty, not a refused request: it neither
// writes audit lines nor counts towards MaxRefusedRequests.
func TestWindowChangesDuringScript(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{MaxSteps: 100_000_000})
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	s.Stdout, s.Stderr = &out, &errOut
	if err := s.Start("x = 0\nfor i in range(3000000):\n    x += i\nprint(x)"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 * sshserver.MaxRefusedRequests {
		if err := s.WindowChange(24+i, 80); err != nil {
			t.Fatalf("window-change %d: %v", i, err)
		}
	}
	if err := s.Wait(); err != nil || out.String() != "4499998500000\r\n" {
		t.Fatalf("script with a resized terminal: %q %q %v", out.String(), errOut.String(), err)
	}
	if n := refusedLines(e, t, "window-change"); n != 0 {
		t.Errorf("%d request.refused lines for window-change", n)
	}
}
