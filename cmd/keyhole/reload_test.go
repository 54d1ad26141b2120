package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// reloadEnv is a server started by startServer, as "keyhole dev" starts
// it, with a client for its user.
type reloadEnv struct {
	dir, pdir, sandbox string
	srv                *running
	client             *gossh.ClientConfig
	audit              *testenv.AuditTail
}

func startReloadEnv(t *testing.T) *reloadEnv {
	t.Helper()
	dir := t.TempDir()
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	env, err := makeDevEnv(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(&config{
		Listen:            "127.0.0.1:0",
		HostKey:           filepath.Join(dir, "host_key"),
		TrustedUserCAKeys: filepath.Join(dir, "ca.pub"),
		PolicyDir:         filepath.Join(dir, "policies"),
		AuditLog:          filepath.Join(dir, "audit.log"),
		Limits:            limitsConfig{MaxWall: duration{60 * time.Second}},
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// wait handles SIGHUP as the serve command does.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.wait(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("wait: %v", err)
		}
		srv.close()
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
	return &reloadEnv{
		dir: dir, pdir: filepath.Join(dir, "policies"), sandbox: env.sandbox, srv: srv,
		client: &gossh.ClientConfig{
			User:            "dev",
			Auth:            []gossh.AuthMethod{gossh.PublicKeys(testenv.CertSigner(t, id, id+"-cert.pub"))},
			HostKeyCallback: gossh.FixedHostKey(hk),
			Timeout:         30 * time.Second,
		},
	}
}

// run runs script in one session and returns its exit status and stderr.
func (e *reloadEnv) run(script string) (int, string, error) {
	c, err := gossh.Dial("tcp", e.srv.addr(), e.client)
	if err != nil {
		return -1, "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return -1, "", err
	}
	defer s.Close()
	var stderr bytes.Buffer
	s.Stderr = &stderr
	err = s.Run(script)
	if ee, ok := err.(*gossh.ExitError); ok {
		return ee.ExitStatus(), stderr.String(), nil
	}
	if err != nil {
		return -1, stderr.String(), err
	}
	return 0, stderr.String(), nil
}

// auditEvents reads the audit log, parsing only what was added since the
// last call: sessions write to it all the while.
func (e *reloadEnv) auditEvents(t *testing.T) []map[string]any {
	t.Helper()
	if e.audit == nil {
		e.audit = &testenv.AuditTail{Path: filepath.Join(e.dir, "audit.log")}
	}
	return e.audit.Events(t)
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReloadUnderLoad rewrites the policy directory 100 times, a fifth of
// them invalid, by every means (in place, renamed into place, SIGHUP),
// while sessions read a file in a loop. No session may fail, every decision
// line must name the version of a valid set, and each session must decide
// with one version from start to end.
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and many sessions")
	}
	e := startReloadEnv(t)
	// Every valid set lets dev read the log; each has its own version.
	target := filepath.Join(e.sandbox, "logs/app.log")
	valid := func(i int) string {
		return fmt.Sprintf(`// generation %d
@id("dev-logs-read-%d")
permit (principal in Keyhole::Role::"dev", action == Keyhole::Action::"read", resource in Keyhole::Dir::"%s/logs");
`, i, i, e.sandbox)
	}
	// An invalid set: if it were loaded, reads would be denied.
	invalid := func(i int) string {
		return fmt.Sprintf(`// generation %d, broken
@id("deny-all-%d")
forbid (principal, action, resource);
@id("typo-%d")
permit (principal, action, resource is Keyhole::File) when { resource.owner == "dev" };
`, i, i, i)
	}
	validVersions := map[string]bool{e.srv.policy.Current().Version(): true}

	script := fmt.Sprintf("for i in range(40):\n    fs.read(%q)\nprint(\"ok\")\n", target)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	sessions := 0
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				exit, stderr, err := e.run(script)
				mu.Lock()
				sessions++
				if err != nil || exit != 0 {
					failures = append(failures, fmt.Sprintf("exit %d, err %v, stderr %q", exit, err, stderr))
				}
				mu.Unlock()
			}
		})
	}

	write := func(name, text string, i int) {
		p := filepath.Join(e.pdir, name)
		switch i % 3 {
		case 0: // in place
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		default: // renamed into place, as editors and config tools do
			tmp := filepath.Join(e.pdir, "."+name+".tmp")
			if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	refusedFor := func(i int) bool {
		for _, ev := range e.auditEvents(t) {
			r, _ := ev["reason"].(string)
			if ev["event"] == "policy.reload" && strings.Contains(r, "refused") && strings.Contains(r, fmt.Sprintf(`"typo-%d"`, i)) {
				return true
			}
		}
		return false
	}
	for i := range 100 {
		if i%5 == 4 {
			good := e.srv.policy.Current()
			write("dev.cedar", invalid(i), i)
			if i%2 == 0 {
				_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
			}
			waitFor(t, fmt.Sprintf("set %d to be refused", i), func() bool { return refusedFor(i) })
			if e.srv.policy.Current() != good {
				t.Fatalf("set %d: an invalid set replaced the good one", i)
			}
			continue
		}
		text := valid(i)
		v := versionOfFiles(t, map[string]string{"dev.cedar": text})
		validVersions[v] = true
		write("dev.cedar", text, i)
		if i%2 == 1 {
			_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
		}
		waitFor(t, fmt.Sprintf("set %d to take effect", i), func() bool { return e.srv.policy.Current().Version() == v })
	}
	stop()
	wg.Wait()

	if len(failures) > 0 {
		t.Errorf("%d of %d sessions failed, first: %s", len(failures), sessions, failures[0])
	}
	if sessions < 3 {
		t.Fatalf("only %d sessions ran", sessions)
	}
	// Audit: every decision names a valid version, the one its session
	// started with.
	started := map[string]string{} // session → version at session.start
	decisions, versionsSeen := 0, map[string]bool{}
	for _, ev := range e.auditEvents(t) {
		sid, _ := ev["session"].(string)
		v, _ := ev["policy_version"].(string)
		switch ev["event"] {
		case "session.start":
			started[sid] = v
		case "decision":
			decisions++
			versionsSeen[v] = true
			if !validVersions[v] {
				t.Fatalf("decision %v names a version that no valid set has", ev)
			}
			if started[sid] != v {
				t.Fatalf("session %s started with %s but decided with %s", sid, started[sid], v)
			}
			if ev["decision"] != "allow" {
				t.Fatalf("denied: %v", ev)
			}
		}
	}
	if decisions == 0 {
		t.Fatal("no decision lines")
	}
	t.Logf("%d sessions, %d decisions, %d distinct versions decided with", sessions, decisions, len(versionsSeen))
}

// versionOfFiles is the version Load gives a directory holding files.
func versionOfFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	m := make(map[string][]byte, len(files))
	for k, v := range files {
		m[k] = []byte(v)
	}
	ps, err := authz.LoadFiles(m)
	if err != nil {
		t.Fatal(err)
	}
	return ps.Version()
}

// TestSIGHUPReloads checks the signal path alone: a HUP reloads, a HUP with
// a bad set keeps the server serving the last good set, and both are
// audited.
func TestSIGHUPReloads(t *testing.T) {
	e := startReloadEnv(t)
	before := e.srv.policy.Current().Version()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unchanged HUP to be audited", func() bool {
		for _, ev := range e.auditEvents(t) {
			if ev["event"] == "policy.reload" && ev["reason"] == "sighup: unchanged" && ev["policy_version"] == before {
				return true
			}
		}
		return false
	})
	read := fmt.Sprintf("print(len(fs.read(%q)))", filepath.Join(e.sandbox, "logs/app.log"))
	if exit, stderr, err := e.run(read); err != nil || exit != 0 {
		t.Fatalf("after HUP: exit %d, %v, %s", exit, err, stderr)
	}

	// A bad file: the HUP is refused, audited with file:line, and the
	// server keeps serving the last good set.
	bad := filepath.Join(e.pdir, "zz-bad.cedar")
	if err := os.WriteFile(bad, []byte("@id(\"x\")\nforbid (principal, action, resource) when { context.nope };\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bad HUP to be refused", func() bool {
		for _, ev := range e.auditEvents(t) {
			r, _ := ev["reason"].(string)
			if ev["event"] == "policy.reload" && strings.HasPrefix(r, "sighup: refused") && strings.Contains(r, bad+":1:") &&
				ev["policy_version"] == before {
				return true
			}
		}
		return false
	})
	if e.srv.policy.Current().Version() != before {
		t.Fatal("a bad set took effect")
	}
	if exit, stderr, err := e.run(read); err != nil || exit != 0 {
		t.Fatalf("after a refused HUP: exit %d, %v, %s", exit, err, stderr)
	}
}
