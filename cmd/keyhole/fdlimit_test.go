package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// TestServeUnderLowFDLimit runs "keyhole serve" as a child process with
// RLIMIT_NOFILE lowered to 256 and floods it with 400 idle authenticated
// connections (the connection caps set above the descriptor limit). The
// server refuses the connections that would eat its reserve of
// descriptors, says so in its log, and a client whose connection was open
// before the flood still runs a script (a worker needs descriptors for its
// pipes). Once the flood closes, new connections are served again.
func TestServeUnderLowFDLimit(t *testing.T) {
	t.Parallel()
	const limit, flood = 256, 400
	bin, err := exec.LookPath("keyhole") // this test binary, as testscript installs it
	if err != nil {
		t.Skipf("keyhole not in PATH: %v", err)
	}
	dir := t.TempDir()
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if _, err := makeDevEnv(dir); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "keyhole.toml")
	if err := os.WriteFile(cfg, []byte(`listen = "127.0.0.1:0"
host_key = "host_key"
trusted_user_ca_keys = "ca.pub"
policy_dir = "policies"
audit_log = "audit.log"
[limits]
max_connections = 1000
max_connections_per_user = 1000
max_startups = 100
max_startups_per_source = 100
`), 0o644); err != nil {
		t.Fatal(err)
	}
	addrFile := filepath.Join(dir, "addr")
	var stderr lockedBuffer
	cmd := exec.Command(bin, "serve", "--config", cfg, "--addr-file", addrFile)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Both limits, so that the server cannot raise its own back.
	if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("prlimit: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	})
	var addr string
	deadline := time.Now().Add(20 * time.Second)
	for addr == "" {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			addr = strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", stderr.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	hk, _, _, _, err := gossh.ParseAuthorizedKey(hostPub)
	if err != nil {
		t.Fatal(err)
	}
	id := filepath.Join(dir, "id_ed25519")
	clientCfg := &gossh.ClientConfig{
		User:            "dev",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(testenv.CertSigner(t, id, id+"-cert.pub"))},
		HostKeyCallback: gossh.FixedHostKey(hk),
		Timeout:         10 * time.Second,
	}
	// dial connects and authenticates within 5 s: a server out of
	// descriptors leaves a client hanging in its listen backlog.
	dial := func() (*gossh.Client, error) {
		nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return nil, err
		}
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		sc, chans, reqs, err := gossh.NewClientConn(nc, addr, clientCfg)
		if err != nil {
			nc.Close()
			return nil, err
		}
		_ = nc.SetDeadline(time.Time{})
		return gossh.NewClient(sc, chans, reqs), nil
	}
	// run runs a script on c, giving up after 30 s.
	run := func(c *gossh.Client) (string, error) {
		type result struct {
			out string
			err error
		}
		done := make(chan result, 1)
		go func() {
			s, err := c.NewSession()
			if err != nil {
				done <- result{"", err}
				return
			}
			defer s.Close()
			var errb bytes.Buffer
			s.Stderr = &errb
			out, err := s.Output(`print("in")`)
			done <- result{string(out) + errb.String(), err}
		}()
		select {
		case r := <-done:
			return r.out, r.err
		case <-time.After(30 * time.Second):
			return "", errors.New("no answer within 30s")
		}
	}
	legit, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer legit.Close()
	if out, err := run(legit); err != nil || out != "in\n" {
		t.Fatalf("before the flood: %q %v", out, err)
	}

	var (
		mu      sync.Mutex
		held    []*gossh.Client
		refused int
		wg      sync.WaitGroup
		sem     = make(chan struct{}, 16)
	)
	for range flood {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused++
				if refused == 1 {
					t.Logf("first refusal: %v", err)
				}
				return
			}
			held = append(held, c)
		}()
	}
	wg.Wait()
	t.Logf("flood: %d connections held, %d refused", len(held), refused)
	if refused == 0 {
		t.Fatalf("all %d connections accepted under a limit of %d descriptors", flood, limit)
	}
	// More scripts at once than there are pre-started workers: each new
	// worker needs descriptors for its pipes, from the reserve.
	var scripts sync.WaitGroup
	for i := range 6 {
		scripts.Add(1)
		go func() {
			defer scripts.Done()
			if out, err := run(legit); err != nil || out != "in\n" {
				t.Errorf("script %d on a connection opened before the flood: %q %v", i, out, err)
			}
		}()
	}
	scripts.Wait()
	if !strings.Contains(stderr.String(), "refusing new connections") {
		t.Errorf("no warning in the server log:\n%s", stderr.String())
	}

	for _, c := range held {
		c.Close()
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		c, err := dial()
		if err == nil {
			out, err := run(c)
			c.Close()
			if err != nil || out != "in\n" {
				t.Fatalf("new connection after the flood: %q %v", out, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new connection served after the flood closed: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(stderr.String(), "refusing new connections"); n > 3 {
		t.Errorf("%d warnings in the server log, want them rate-limited", n)
	}
}
