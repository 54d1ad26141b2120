package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// serveProc is "keyhole serve" running as a child process (the test
// binary, as testscript installs it), so that signals are real.
type serveProc struct {
	dir, sandbox, audit string
	sh, sleep           string
	cmd                 *exec.Cmd
	stderr              *lockedBuffer
	exited              chan struct{} // closed once the process has exited
	exitErr             error         // Wait's error, once exited is closed
	addr                string
	client              *gossh.ClientConfig
}

// startServeProc starts a server whose role "dev" may read the sandbox's
// logs/ and run sh and sleep, with its audit log in audit.log; extra is
// appended to its config's top-level keys.
func startServeProc(t *testing.T, extra string) *serveProc {
	return startServeProcAudit(t, "audit.log", extra)
}

// startServeProcAudit is startServeProc with audit_log = auditLog.
func startServeProcAudit(t *testing.T, auditLog, extra string) *serveProc {
	t.Helper()
	bin, err := exec.LookPath("keyhole")
	if err != nil {
		t.Skipf("keyhole not in PATH: %v", err)
	}
	dir := t.TempDir()
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	env, err := makeDevEnv(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProc{dir: dir, sandbox: env.sandbox, audit: filepath.Join(dir, "audit.log"), stderr: &lockedBuffer{},
		exited: make(chan struct{})}
	if p.sh, err = filepath.EvalSymlinks("/bin/sh"); err != nil {
		t.Fatal(err)
	}
	if p.sleep, err = filepath.EvalSymlinks("/bin/sleep"); err != nil {
		t.Skipf("no sleep: %v", err)
	}
	policy := fmt.Sprintf(`@id("sh") permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::%q);
@id("sleep") permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::%q);
`, p.sh, p.sleep)
	if err := os.WriteFile(filepath.Join(dir, "policies", "exec.cedar"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "keyhole.toml")
	if err := os.WriteFile(cfg, []byte(`listen = "127.0.0.1:0"
host_key = "host_key"
trusted_user_ca_keys = "ca.pub"
policy_dir = "policies"
audit_log = "`+auditLog+`"
`+extra+`
[limits]
max_wall = "10m"
max_sessions_per_user = 1000
max_connections_per_user = 1000
max_startups = 100
max_startups_per_source = 100
`), 0o644); err != nil {
		t.Fatal(err)
	}
	addrFile := filepath.Join(dir, "addr")
	p.cmd = exec.Command(bin, "serve", "--config", cfg, "--addr-file", addrFile)
	p.cmd.Stderr = p.stderr
	// A child left behind holding stderr must not hold Wait forever.
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	for deadline := time.Now().Add(20 * time.Second); p.addr == ""; {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			p.addr = strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", p.stderr.String())
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
	p.client = &gossh.ClientConfig{
		User:            "dev",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(testenv.CertSigner(t, id, id+"-cert.pub"))},
		HostKeyCallback: gossh.FixedHostKey(hk),
		Timeout:         30 * time.Second,
	}
	return p
}

func (p *serveProc) dial(t *testing.T) *gossh.Client {
	t.Helper()
	c, err := gossh.Dial("tcp", p.addr, p.client)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// waitLog waits until the server log holds want.
func (p *serveProc) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p.stderr.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("server log has no %q:\n%s", want, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procEnd is how one script ended, as its client saw it.
type procEnd struct {
	exit           int
	stdout, stderr string
	err            error
}

// startScript runs script on a new connection; ready is called once the
// script has printed its first line; the end is sent on the returned
// channel.
func (p *serveProc) startScript(t *testing.T, script string, ready func()) <-chan procEnd {
	t.Helper()
	c := p.dial(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	s.Stderr = &stderr
	if err := s.Start(script); err != nil {
		t.Fatal(err)
	}
	done := make(chan procEnd, 1)
	go func() {
		defer c.Close()
		var stdout strings.Builder
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			stdout.WriteString(sc.Text() + "\n")
			if first {
				first = false
				ready()
			}
		}
		end := procEnd{}
		err := s.Wait()
		var ee *gossh.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			end.exit = ee.ExitStatus()
		default:
			end.err = err
		}
		end.stdout, end.stderr = stdout.String(), stderr.String()
		done <- end
	}()
	return done
}

// auditEvents reads the audit log files in paths, which no server writes
// any more: a line that is not JSON, or a last line cut short, fails the
// test.
func auditEvents(t *testing.T, paths ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("%s: last line cut short: %q", p, b[bytes.LastIndexByte(b, '\n')+1:])
		}
		out = append(out, testenv.ReadAudit(t, p)...)
	}
	return out
}

// checkSessionsComplete checks that every session.start has exactly one
// session.end and returns the session.end lines.
func checkSessionsComplete(t *testing.T, events []map[string]any) map[string]map[string]any {
	t.Helper()
	starts, ends := map[string]bool{}, map[string]map[string]any{}
	for _, ev := range events {
		sid, _ := ev["session"].(string)
		switch ev["event"] {
		case "session.start":
			starts[sid] = true
		case "session.end":
			if ends[sid] != nil {
				t.Errorf("session %s has two session.end lines", sid)
			}
			ends[sid] = ev
		}
	}
	for sid := range starts {
		if ends[sid] == nil {
			t.Errorf("session %s has a session.start and no session.end", sid)
		}
	}
	if len(ends) != len(starts) {
		t.Errorf("%d session.start lines, %d session.end lines", len(starts), len(ends))
	}
	return ends
}

// TestServeSIGTERMDuringScripts sends SIGTERM to a server running 20
// scripts, with shutdown_grace = "4s": the 10 that end within the grace
// (they wait for a file the test writes after the signal) end with exit
// 0; the 10 that would run on end with INTERNAL: server shutting down,
// exit 125. The process exits 0 within the grace and a few seconds, after
// every audit line is written; its log says it stopped and how many
// sessions it ended.
func TestServeSIGTERMDuringScripts(t *testing.T) {
	t.Parallel()
	const grace = 4 * time.Second
	p := startServeProc(t, `shutdown_grace = "4s"`)
	gate := filepath.Join(p.dir, "go")
	const n = 20
	ready := make(chan struct{}, n)
	ends := make([]<-chan procEnd, n)
	for i := 0; i < n; i++ {
		script := fmt.Sprintf("print(\"ready\")\nproc.run([%q, \"300\"], timeout = 600)\nprint(\"unreached\")", p.sleep)
		if i%2 == 0 {
			script = fmt.Sprintf("print(\"ready\")\nr = proc.run([%q, \"-c\", \"while [ ! -e %s ]; do sleep 0.05; done\"], timeout = 120)\nprint(\"done\", r.exit)", p.sh, gate)
		}
		ends[i] = p.startScript(t, script, func() { ready <- struct{}{} })
	}
	for i := 0; i < n; i++ {
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			t.Fatalf("only %d of %d scripts started", i, n)
		}
	}
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "stopping")
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(grace + 15*time.Second):
		t.Fatalf("server still running %s after SIGTERM:\n%s", time.Since(t0), p.stderr.String())
	}
	took := time.Since(t0)
	t.Logf("exited %s after SIGTERM (grace %s)", took, grace)
	if p.exitErr != nil {
		t.Errorf("server exit: %v\n%s", p.exitErr, p.stderr.String())
	}
	if took > grace+5*time.Second {
		t.Errorf("server took %s to exit with a grace of %s", took, grace)
	}
	for i, c := range ends {
		end := <-c
		want := procEnd{exit: 125, stdout: "ready\n", stderr: "INTERNAL: server shutting down\n"}
		if i%2 == 0 {
			want = procEnd{stdout: "ready\ndone 0\n"}
		}
		if end != want {
			t.Errorf("session %d ended %+v, want %+v", i, end, want)
		}
	}
	ended := 0
	for sid, ev := range checkSessionsComplete(t, auditEvents(t, p.audit)) {
		if ev["exit"] == 125.0 {
			ended++
			if ev["reason"] != "server shutting down" {
				t.Errorf("session.end of %s: reason %v", sid, ev["reason"])
			}
		}
	}
	if ended != n/2 {
		t.Errorf("%d session.end lines with exit 125, want %d", ended, n/2)
	}
	if log := p.stderr.String(); !strings.Contains(log, "stopped: 10 of 20 running sessions ended by the shutdown") {
		t.Errorf("server log:\n%s", log)
	}
}

// TestServeSecondSignalEndsAtOnce: with a long grace, a second signal
// during it ends the running scripts at once, their audit lines written.
func TestServeSecondSignalEndsAtOnce(t *testing.T) {
	t.Parallel()
	p := startServeProc(t, `shutdown_grace = "10m"`)
	const n = 3
	ready := make(chan struct{}, n)
	ends := make([]<-chan procEnd, n)
	for i := range ends {
		ends[i] = p.startScript(t, fmt.Sprintf("print(\"ready\")\nproc.run([%q, \"300\"], timeout = 600)", p.sleep),
			func() { ready <- struct{}{} })
	}
	for range n {
		<-ready
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "stopping")
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.exitErr != nil {
			t.Errorf("server exit: %v", p.exitErr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("server still running after a second signal:\n%s", p.stderr.String())
	}
	t.Logf("exited %s after the second signal", time.Since(t0))
	for i, c := range ends {
		if end := <-c; end.exit != 125 || end.stderr != "INTERNAL: server shutting down\n" {
			t.Errorf("session %d ended %+v", i, end)
		}
	}
	if got := len(checkSessionsComplete(t, auditEvents(t, p.audit))); got != n {
		t.Errorf("%d sessions in the audit log, want %d", got, n)
	}
	if log := p.stderr.String(); !strings.Contains(log, "second stop signal") || !strings.Contains(log, "stopped: 3 of 3") {
		t.Errorf("server log:\n%s", log)
	}
}

// TestServeSIGUSR1DuringBurst rotates the audit log in the middle of a
// burst of 200 sessions, each making one decision: with logrotate, when it
// is installed, running contrib/logrotate/keyhole (its path and its
// signal command adapted to the test's server); else as logrotate does,
// rename then SIGUSR1. The old and new files together hold every line,
// each valid JSON: 200 decisions, 200 session.start and 200 session.end
// lines.
func TestServeSIGUSR1DuringBurst(t *testing.T) {
	t.Parallel()
	p := startServeProc(t, "")
	rotate := renameAndSignal
	if lr, err := exec.LookPath("logrotate"); err == nil {
		rotate = func(t *testing.T, p *serveProc) string { return runLogrotate(t, p, lr) }
	} else {
		t.Log("logrotate not installed: renaming and signalling as it does")
	}
	const n, conns = 200, 10 // 20 sessions on each connection, one after another
	script := fmt.Sprintf("print(len(fs.read(%q)))", filepath.Join(p.sandbox, "logs", "app.log"))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		done    int
		failed  []string
		rotated string
	)
	session := func(c *gossh.Client) error {
		s, err := c.NewSession()
		if err != nil {
			return err
		}
		defer s.Close()
		out, err := s.Output(script)
		if err == nil && string(out) != "64\n" {
			err = fmt.Errorf("output %q", out)
		}
		return err
	}
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := gossh.Dial("tcp", p.addr, p.client)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for range n / conns {
				err := session(c)
				mu.Lock()
				done++
				if err != nil {
					failed = append(failed, err.Error())
				}
				half := done == n/2
				mu.Unlock()
				if half {
					rotated = rotate(t, p) // while the other sessions run
				}
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d sessions failed, first: %s", len(failed), failed[0])
	}
	p.waitLog(t, "audit log reopened")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	if p.exitErr != nil {
		t.Fatalf("server exit: %v", p.exitErr)
	}
	old, cur := auditEvents(t, rotated), auditEvents(t, p.audit)
	count := func(events []map[string]any, kind string) int {
		c := 0
		for _, ev := range events {
			if ev["event"] == kind {
				c++
			}
		}
		return c
	}
	all := append(old, cur...)
	for _, kind := range []string{"decision", "session.start", "session.end"} {
		if got := count(all, kind); got != n {
			t.Errorf("%d %s lines in both files, want %d", got, kind, n)
		}
	}
	checkSessionsComplete(t, all)
	if count(old, "decision") == 0 || count(cur, "decision") == 0 {
		t.Errorf("decisions: %d in the old file, %d in the new one; want some in each", count(old, "decision"), count(cur, "decision"))
	}
	t.Logf("decisions: %d in the old file, %d in the new one", count(old, "decision"), count(cur, "decision"))
}

// TestServeSIGUSR1WithoutFile: with the audit log on stdout, SIGUSR1 is
// ignored (and says so), and the server goes on serving.
func TestServeSIGUSR1WithoutFile(t *testing.T) {
	t.Parallel()
	p := startServeProcAudit(t, "-", "")
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "SIGUSR1 ignored: the audit log is not a file")
	c := p.dial(t)
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := s.Output(`print("still serving")`); err != nil || string(out) != "still serving\n" {
		t.Fatalf("after SIGUSR1: %q %v", out, err)
	}
}

// TestServeAuditSyslogUnreachable: audit_log = "syslog" (or audit_syslog)
// with no syslog daemon listening refuses to start, saying why, before
// anything listens.
func TestServeAuditSyslogUnreachable(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Type() == os.ModeSocket {
			t.Skipf("%s is a socket: a syslog daemon may be listening", p)
		}
	}
	for _, tc := range []struct{ name, auditLog, extra string }{
		{"syslog", "syslog", ""},
		{"file-and-syslog", "audit.log", "audit_syslog = true\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := makeDevEnv(dir); err != nil {
				t.Fatal(err)
			}
			cfgPath := filepath.Join(dir, "keyhole.toml")
			if err := os.WriteFile(cfgPath, []byte(`listen = "127.0.0.1:0"
host_key = "host_key"
trusted_user_ca_keys = "ca.pub"
policy_dir = "policies"
audit_log = "`+tc.auditLog+`"
`+tc.extra), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.AuditLog != tc.auditLog && tc.auditLog == "syslog" {
				t.Fatalf("audit_log %q became %q", tc.auditLog, cfg.AuditLog)
			}
			srv, err := startServer(cfg, io.Discard)
			if err == nil {
				srv.close()
				t.Fatal("started with no syslog daemon")
			}
			if !strings.Contains(err.Error(), "audit: syslog: connect to the local syslog daemon") {
				t.Fatalf("error %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "audit.log")); err == nil {
				t.Error("audit.log created although the server did not start")
			}
		})
	}
}

// renameAndSignal rotates p's audit log as logrotate does and returns the
// rotated file's path.
func renameAndSignal(t *testing.T, p *serveProc) string {
	rotated := p.audit + ".1"
	if err := os.Rename(p.audit, rotated); err != nil {
		t.Error(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Error(err)
	}
	return rotated
}

// runLogrotate runs logrotate (at lr) with contrib/logrotate/keyhole, its
// path made p's audit log and its postrotate command a kill -USR1 of p,
// and returns the rotated file's path.
func runLogrotate(t *testing.T, p *serveProc, lr string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "logrotate", "keyhole"))
	if err != nil {
		t.Error(err)
		return ""
	}
	conf := string(b)
	for old, new := range map[string]string{
		"/var/log/keyhole/audit.jsonl {":                                p.audit + " {",
		"systemctl kill --kill-whom=main --signal=USR1 keyhole.service": fmt.Sprintf("kill -USR1 %d", p.cmd.Process.Pid),
		"create 0600 root root":                                         "create 0600",
	} {
		if !strings.Contains(conf, old) {
			t.Errorf("contrib/logrotate/keyhole has no %q", old)
		}
		conf = strings.ReplaceAll(conf, old, new)
	}
	confPath := filepath.Join(p.dir, "logrotate.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Error(err)
		return ""
	}
	if out, err := exec.Command(lr, "-f", "-s", filepath.Join(p.dir, "logrotate.state"), confPath).CombinedOutput(); err != nil {
		t.Errorf("logrotate: %v\n%s", err, out)
	}
	m, _ := filepath.Glob(p.audit + "-*")
	if len(m) != 1 {
		t.Errorf("rotated files %v, want one", m)
		return ""
	}
	return m[0]
}
