package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

const pushPolicy = `@id("deploy")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"stat", Keyhole::Action::"write",
                   Keyhole::Action::"create", Keyhole::Action::"chmod"],
        resource in Keyhole::Dir::"{{SANDBOX}}/deploy");

@id("ro-read")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::"{{SANDBOX}}/ro");

@id("no-secrets")
forbid (principal, action, resource in Keyhole::Dir::"{{SANDBOX}}/deploy/secrets");`

// pushEnv is one host with the push policy, and a client connected to it.
type pushEnv struct {
	f      *fixture
	d      *client.Dialer
	target client.Target
	local  string // a local directory
}

func newPushEnv(t *testing.T) *pushEnv {
	t.Helper()
	return newPushEnvPolicy(t, pushPolicy)
}

func newPushEnvPolicy(t *testing.T, policy string) *pushEnv {
	t.Helper()
	f := newFixture(t)
	for _, d := range []string{"deploy/secrets", "ro"} {
		if err := os.MkdirAll(filepath.Join(f.sandbox, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h := f.host(t, testenv.LoadPolicy(t, f.dir, "push", f.sandbox, policy))
	kh := f.knownHosts(t, "kh_push", h.KnownHostsLine())
	d, err := client.NewDialer(client.Config{Identities: []string{f.userKey}, KnownHosts: []string{kh}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	tg, err := client.ParseTarget("logs@" + h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(f.dir, "local")
	if err := os.MkdirAll(local, 0o755); err != nil {
		t.Fatal(err)
	}
	return &pushEnv{f: f, d: d, target: tg, local: local}
}

// file writes a local file and returns it ready to push to remote (under
// the sandbox).
func (e *pushEnv) file(t *testing.T, name, content, remote string) client.PushFile {
	t.Helper()
	p := filepath.Join(e.local, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	pf, err := client.NewPushFile(p, filepath.Join(e.f.sandbox, remote))
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

func (e *pushEnv) push(t *testing.T, files []client.PushFile, opts client.PushOptions) client.PushHostResult {
	t.Helper()
	rs := e.d.PushFanOut(context.Background(), []client.Target{e.target}, files, client.PushFanOutOptions{PushOptions: opts})
	return rs[0]
}

func checkFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != content {
		t.Errorf("%s holds %q, want %q", p, b, content)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s has mode %#o, want %#o", p, fi.Mode().Perm(), mode)
	}
}

// A push writes what differs and nothing else: a new file (mode 0644),
// an existing one with other content (its mode kept); the second push
// finds both there; --mode changes only the mode of a file whose content
// is there; the Then script runs only where something changed.
func TestPushChangedUnchanged(t *testing.T) {
	e := newPushEnv(t)
	dir := filepath.Join(e.f.sandbox, "deploy")
	old := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(old, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []client.PushFile{
		e.file(t, "app.conf", "new content\n", "deploy/app.conf"),
		e.file(t, "extra.conf", "extra\n", "deploy/extra.conf"),
	}
	then := client.PushOptions{Then: `print("reloaded"); result("reloaded")`}
	for i, tc := range []struct {
		opts      client.PushOptions
		status    string
		changed   int
		thenRan   bool
		appMode   os.FileMode
		extraMode os.FileMode
	}{
		{then, "changed", 2, true, 0o600, 0o644},
		{then, "unchanged", 0, false, 0o600, 0o644},
		{client.PushOptions{Mode: modePtr(0o640), Then: then.Then}, "changed", 2, true, 0o640, 0o640},
		{client.PushOptions{Mode: modePtr(0o640)}, "unchanged", 0, false, 0o640, 0o640},
	} {
		r := e.push(t, files, tc.opts)
		if r.Outcome != client.OK || r.Status() != tc.status || len(r.Push.Changed) != tc.changed {
			t.Fatalf("push %d: %s %s, changed %v, err %v", i, r.Outcome, r.Status(), r.Push.Changed, r.Err)
		}
		if ran := r.Push.Then != nil; ran != tc.thenRan {
			t.Errorf("push %d: then ran %v", i, ran)
		}
		if tc.thenRan && (r.Result == nil || string(r.Result.Result) != `"reloaded"`) {
			t.Errorf("push %d: then result %+v", i, r.Result)
		}
		checkFile(t, old, "new content\n", tc.appMode)
		checkFile(t, filepath.Join(dir, "extra.conf"), "extra\n", tc.extraMode)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 { // app.conf, extra.conf, secrets
		t.Errorf("deploy holds %d entries, want 3", len(ents))
	}
	// A Then script that fails makes the host fail with its outcome.
	files[0] = e.file(t, "app.conf", "newer\n", "deploy/app.conf")
	r := e.push(t, files, client.PushOptions{Then: `fail("reload failed")`})
	if r.Outcome != client.ScriptError || r.Status() != "failed" || !strings.Contains(r.ErrorLine(), "reload failed") {
		t.Errorf("failing then: %s %s %q", r.Outcome, r.Status(), r.ErrorLine())
	}
	checkFile(t, old, "newer\n", 0o640)
}

func modePtr(m os.FileMode) *os.FileMode { return &m }

// A destination the policy denies is written nothing: a denied read
// stops the push at the hash check (no blind upload), a denied write at
// the sftp open; either is access denied with a deny line in the audit.
func TestPushDenied(t *testing.T) {
	e := newPushEnv(t)
	ro := filepath.Join(e.f.sandbox, "ro", "app.conf")
	if err := os.WriteFile(ro, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, action string
		stage                string
	}{
		{"read-denied", "deploy/secrets/key", "read", "check"},
		{"write-denied", "ro/app.conf", "write", "sftp"},
		{"create-denied", "ro/new.conf", "create", "sftp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pf := e.file(t, "x", "pushed\n", tc.remote)
			r := e.push(t, []client.PushFile{pf}, client.PushOptions{Then: `print("then")`})
			if r.Outcome != client.AccessDenied || r.Status() != "failed" {
				t.Fatalf("outcome %s %s, err %v", r.Outcome, r.Status(), r.Err)
			}
			if r.Push.Then != nil || len(r.Push.Changed) != 0 {
				t.Errorf("then ran or changed: %+v", r.Push)
			}
			if tc.stage == "check" && (r.Result == nil || r.Result.Exit != 13) {
				t.Errorf("check result %+v", r.Result)
			}
			b, _ := r.MarshalJSON()
			if !strings.Contains(string(b), `"outcome":"access_denied","status":"failed"`) || !strings.Contains(string(b), `"kind":"ACCESS_DENIED"`) {
				t.Errorf("json %s", b)
			}
			if tc.name == "read-denied" {
				if _, err := os.Stat(pf.Remote); !os.IsNotExist(err) {
					t.Errorf("%s written: %v", pf.Remote, err)
				}
			}
			found := false
			for _, ev := range testenv.ReadAudit(t, e.f.auditPath) {
				if ev["event"] == "decision" && ev["decision"] == "deny" && ev["action"] == tc.action && ev["resource"] == pf.Remote {
					found = true
				}
			}
			if !found {
				t.Errorf("no deny line for %s %s", tc.action, pf.Remote)
			}
		})
	}
	checkFile(t, ro, "old\n", 0o644)
	if _, err := os.Stat(filepath.Join(e.f.sandbox, "ro", "new.conf")); !os.IsNotExist(err) {
		t.Errorf("ro/new.conf: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.f.sandbox, "deploy", "secrets")); len(ents) != 0 {
		t.Errorf("secrets holds %d entries", len(ents))
	}
}

// A push cut off mid-upload (its connection closed) leaves the old file
// and nothing else; the server serves the next push.
func TestPushInterrupted(t *testing.T) {
	e := newPushEnv(t)
	dir := filepath.Join(e.f.sandbox, "deploy")
	old := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(old, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 32<<20)
	rand.Read(big)
	pf := e.file(t, "big.bin", string(big), "deploy/big.bin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := e.d.Dial(ctx, e.target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sent int64
	_, err = c.Push(ctx, []client.PushFile{pf}, client.PushOptions{Progress: func(n int64) {
		sent += n
		if sent > 1<<20 {
			cancel()
		}
	}})
	if err == nil || sent >= int64(len(big)) {
		t.Fatalf("push not cut: sent %d, err %v", sent, err)
	}
	// The server drops the upload when it sees the session end; wait for
	// its session.end line, then look.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		for _, ev := range testenv.ReadAudit(t, e.f.auditPath) {
			if ev["event"] == "session.end" {
				n++
			}
		}
		if n >= 2 { // the hash check's and the sftp session's
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sftp session did not end")
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkFile(t, old, "old\n", 0o644)
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, en := range ents {
		names = append(names, en.Name())
	}
	if !slices.Equal(names, []string{"big.bin", "secrets"}) {
		t.Errorf("deploy holds %v", names)
	}
	r := e.push(t, []client.PushFile{pf}, client.PushOptions{})
	if r.Status() != "changed" {
		t.Fatalf("second push: %s %v", r.Status(), r.Err)
	}
	if b, _ := os.ReadFile(old); !bytes.Equal(b, big) {
		t.Error("second push: content differs")
	}
}

// A local file that changes while it is sent is not committed: the
// sftp session is closed under the open upload, which the server drops.
func TestPushLocalChanged(t *testing.T) {
	e := newPushEnv(t)
	old := filepath.Join(e.f.sandbox, "deploy", "big.bin")
	if err := os.WriteFile(old, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 4<<20)
	pf := e.file(t, "big.bin", string(big), "deploy/big.bin")
	changed := false
	r := e.push(t, []client.PushFile{pf}, client.PushOptions{Then: `print("then")`, Progress: func(int64) {
		if !changed {
			changed = true
			big[len(big)-1] = 1
			if err := os.WriteFile(pf.Local, big, 0o600); err != nil {
				t.Error(err)
			}
		}
	}})
	if r.Outcome != client.Failed || !strings.Contains(r.ErrorLine(), "changed while it was sent") || r.Push.Then != nil {
		t.Fatalf("outcome %s %q", r.Outcome, r.ErrorLine())
	}
	// The upload was never closed, so never committed; the server serves on.
	r = e.push(t, []client.PushFile{e.file(t, "small", "x", "deploy/other")}, client.PushOptions{})
	if r.Outcome != client.OK {
		t.Fatal(r.Err)
	}
	checkFile(t, old, "old\n", 0o644)
}

// The push policy of docs/client.md (its directory moved into the
// sandbox, its role the fixture's) lets a push with --mode and a Then
// script through, and nothing outside its directory.
func TestPushDocPolicy(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "client.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "## Pushing files")
	_, block, ok2 := strings.Cut(sec, "```cedar\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 || !strings.Contains(block, `Dir::"/etc/app"`) {
		t.Fatal("docs/client.md: no cedar block on /etc/app in the push section")
	}
	policy := strings.NewReplacer(`Dir::"/etc/app"`, `Dir::"{{SANDBOX}}/deploy"`, `Role::"deploy"`, `Role::"logs"`).Replace(block)
	e := newPushEnvPolicy(t, policy)
	files := []client.PushFile{e.file(t, "app.conf", "a\n", "deploy/app.conf"), e.file(t, "app.env", "b\n", "deploy/app.env")}
	r := e.push(t, files, client.PushOptions{Mode: modePtr(0o640), Then: `print("reloaded")`})
	if r.Status() != "changed" || len(r.Push.Changed) != 2 || r.Push.Then == nil {
		t.Fatalf("%s %v", r.Status(), r.Err)
	}
	checkFile(t, files[0].Remote, "a\n", 0o640)
	if r := e.push(t, files, client.PushOptions{Mode: modePtr(0o640)}); r.Status() != "unchanged" {
		t.Errorf("second push: %s %v", r.Status(), r.Err)
	}
	if r := e.push(t, []client.PushFile{e.file(t, "x", "x", "ro/x")}, client.PushOptions{}); r.Outcome != client.AccessDenied {
		t.Errorf("outside: %s %v", r.Outcome, r.Err)
	}
}

// Bad input refused before anything is sent.
func TestNewPushFileBad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("x"), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ local, remote, want string }{
		{fifo, "/srv/f", "not a regular file"},
		{filepath.Join(dir, "nope"), "/srv/f", "no such file"},
		{dir, "/srv/f", "not a regular file"},
		{p, "srv/f", "not an absolute path"},
		{p, "/srv/../etc/f", "not a clean file path"},
		{p, "/", "not a clean file path"},
	} {
		if _, err := client.NewPushFile(tc.local, tc.remote); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: %v, want %q", tc.local, tc.remote, err, tc.want)
		}
	}
}

// A push over several hosts: exact outcomes in order, the summary, the
// exit status, and the bytes reported as they go.
func TestPushFanOut(t *testing.T) {
	e := newPushEnv(t)
	deny := e.f.host(t, e.f.denyPolicy)
	kh := e.f.knownHosts(t, "kh_fan", deny.KnownHostsLine())
	e2, err := client.NewDialer(client.Config{Identities: []string{e.f.userKey}, NoAgent: true,
		KnownHosts: []string{kh, filepath.Join(e.f.dir, "kh_push")}})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	closed := closedPort(t)
	denyT, _ := client.ParseTarget("logs@" + deny.Addr)
	targets := []client.Target{
		{Name: "a", Addr: e.target.Addr, Port: e.target.Port, User: "logs"},
		{Name: "b", Addr: e.target.Addr, Port: e.target.Port, User: "logs"},
		{Name: "c", Addr: "127.0.0.1", Port: closed, User: "logs"},
		{Name: "d", Addr: denyT.Addr, Port: denyT.Port, User: "logs"},
	}
	pf := e.file(t, "app.conf", strings.Repeat("x", 100000), "deploy/app.conf")
	var sent int64
	var done []string
	rs := e2.PushFanOut(context.Background(), targets, []client.PushFile{pf}, client.PushFanOutOptions{
		Parallel:    1,
		PushOptions: client.PushOptions{Then: `print("reloaded")`},
		Progress:    func(_ client.Target, n int64) { sent += n },
		Done:        func(r client.PushHostResult) { done = append(done, r.Target.Name+" "+r.Status()) },
	})
	want := []string{"changed", "unchanged", "failed", "failed"}
	outcomes := []client.Outcome{client.OK, client.OK, client.Unreachable, client.AccessDenied}
	for i, r := range rs {
		if r.Status() != want[i] || r.Outcome != outcomes[i] {
			t.Errorf("%s: %s %s, err %v", r.Target.Name, r.Status(), r.Outcome, r.Err)
		}
	}
	if len(done) != 4 {
		t.Errorf("done %v", done)
	}
	if sent != pf.Size {
		t.Errorf("progress %d bytes, want %d", sent, pf.Size)
	}
	line, sum := client.PushSummary(rs)
	if line != "4 hosts: 1 changed, 1 unchanged, 1 access denied, 1 unreachable" || sum.ExitStatus() != client.ExitSomeFailed {
		t.Errorf("summary %q, exit %d", line, sum.ExitStatus())
	}
}

func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// The hash check, the uploads and the Then script of a host share one
// connection: a proxy in front of the server counts the connections.
func TestPushOneConnection(t *testing.T) {
	e := newPushEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	accepted := 0
	var wg sync.WaitGroup
	acceptDone := make(chan struct{})
	defer func() {
		ln.Close()
		<-acceptDone
		wg.Wait()
	}()
	go func() {
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			up, err := net.Dial("tcp", net.JoinHostPort(e.target.Addr, strconv.Itoa(e.target.Port)))
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	hostLine, err := os.ReadFile(filepath.Join(e.f.dir, "kh_push"))
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := strings.Cut(strings.TrimSpace(string(hostLine)), " ")
	port := ln.Addr().(*net.TCPAddr).Port
	kh := e.f.knownHosts(t, "kh_proxy", fmt.Sprintf("[127.0.0.1]:%d %s", port, key))
	d, err := client.NewDialer(client.Config{Identities: []string{e.f.userKey}, KnownHosts: []string{kh}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	files := []client.PushFile{e.file(t, "a", "a\n", "deploy/a"), e.file(t, "b", "b\n", "deploy/b")}
	r := d.PushFanOut(context.Background(), []client.Target{{Name: "p", Addr: "127.0.0.1", Port: port, User: "logs"}}, files,
		client.PushFanOutOptions{PushOptions: client.PushOptions{Mode: modePtr(0o600), Then: `print("then")`}})[0]
	if r.Status() != "changed" || r.Push.Then == nil || len(r.Push.Changed) != 2 {
		t.Fatalf("%s %v", r.Status(), r.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	if accepted != 1 {
		t.Errorf("%d connections, want 1", accepted)
	}
}
