package sshserver_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// countAudit counts auth.refused lines whose reason contains reason.
func countAudit(t *testing.T, e *testenv.Env, reason string) int {
	n := 0
	for _, ev := range e.Audit(t) {
		if ev["event"] == "auth.refused" && strings.Contains(fmt.Sprint(ev["reason"]), reason) {
			n++
		}
	}
	return n
}

// dialFrom opens a TCP connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	return c
}

// holdsSlot reports whether the server kept c (it sends its version
// banner) or dropped it (EOF).
func holdsSlot(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

func TestLoginGraceClosesSilentConnection(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{LoginGrace: 300 * time.Millisecond})
	for _, tc := range []struct {
		name string
		send string
	}{
		{"silent", ""},
		// A client that keeps talking is still cut off: the timer is not a
		// socket deadline that each read resets.
		{"banner-then-stall", "SSH-2.0-slowloris\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", e.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.send != "" {
				if _, err := io.WriteString(c, tc.send); err != nil {
					t.Fatal(err)
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			start := time.Now()
			_, err = io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open after %v", time.Since(start))
			}
		})
	}
	e.WaitAudit(t, func(ev map[string]any) bool {
		return ev["event"] == "auth.refused" && ev["reason"] == "login grace time exceeded" && ev["source"] == "127.0.0.1"
	})
	// An authenticated connection outlives the grace time.
	c := dial(t, e, "logs")
	time.Sleep(600 * time.Millisecond)
	s, err := c.NewSession()
	if err != nil {
		t.Fatalf("authenticated connection closed by the grace timer: %v", err)
	}
	s.Close()
}

func TestMaxAuthTries(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{MaxAuthTries: 3})
	var signers []gossh.Signer
	for range 8 {
		s, _, err := keys.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	// The valid certificate comes last, after more unknown keys than the
	// cap allows: the connection is closed before it is tried.
	signers = append(signers, e.UserSigner(t))
	cfg := &gossh.ClientConfig{
		User:            "logs",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signers...)},
		HostKeyCallback: gossh.FixedHostKey(e.HostKey),
		Timeout:         10 * time.Second,
	}
	if c, err := gossh.Dial("tcp", e.Addr, cfg); err == nil {
		c.Close()
		t.Fatal("authenticated after more failures than MaxAuthTries")
	}
	e.WaitAudit(t, func(ev map[string]any) bool {
		return ev["event"] == "auth.refused" && ev["reason"] == "too many authentication attempts"
	})
	if n := countAudit(t, e, "not a certificate"); n > 3 {
		t.Errorf("%d keys were checked, want at most 3", n)
	}
	stillServes(t, e)
}

// TestMaxStartupsFairness floods the server with 100 parallel
// unauthenticated connections from one source: only the per-source cap of
// them are kept, and a client from another source still logs in with the
// stock ssh. When every slot is taken, new connections are refused until
// the flood goes away.
func TestMaxStartupsFairness(t *testing.T) {
	t.Parallel()
	testenv.NeedBinary(t, "ssh")
	const max, perSource = 20, 5
	e := startEnv(t, sshserver.Limits{MaxStartups: max, MaxStartupsPerSource: perSource, LoginGrace: time.Minute})

	var mu sync.Mutex
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	flooder := func(src string, n int) (kept int) {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := dialFrom(t, src, e.Addr)
				held := holdsSlot(c)
				mu.Lock()
				defer mu.Unlock()
				flood = append(flood, c)
				if held {
					kept++
				}
			}()
		}
		wg.Wait()
		return kept
	}
	if kept := flooder("127.0.0.2", 100); kept != perSource {
		t.Fatalf("server kept %d of 100 connections from one source, want %d", kept, perSource)
	}
	// The dropped connections' lines are rate-limited per source: the
	// first few in full, the rest counted for a summary (refusals.go).
	if n := countAudit(t, e, "too many unauthenticated connections from this source"); n == 0 || n > 5 {
		t.Errorf("%d audit lines for %d dropped connections, want 1..5", n, 100-perSource)
	}
	res := e.SSH(t, "logs", `print("in")`)
	if res.Exit != 0 || res.Stdout != "in\n" {
		t.Fatalf("client from another source locked out: exit %d %q %q", res.Exit, res.Stdout, res.Stderr)
	}

	// Fill every slot from three more sources; then a fourth is refused.
	for _, src := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		if kept := flooder(src, perSource); kept != perSource {
			t.Fatalf("%s: kept %d, want %d", src, kept, perSource)
		}
	}
	if holdsSlot(dialFrom(t, "127.0.0.6", e.Addr)) {
		t.Fatal("a connection beyond MaxStartups was kept")
	}
	e.WaitAudit(t, func(ev map[string]any) bool {
		return ev["event"] == "auth.refused" && ev["reason"] == "too many unauthenticated connections (limit 20)" && ev["source"] == "127.0.0.6"
	})

	// The flood ends; its slots come back.
	mu.Lock()
	for _, c := range flood {
		c.Close()
	}
	flood = nil
	mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := dialFrom(t, "127.0.0.6", e.Addr)
		ok := holdsSlot(c)
		c.Close()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slots not released after the flood closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stillServes(t, e)
}
