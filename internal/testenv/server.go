package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// Env is a running keyhole server with its keys, sandbox and audit log.
type Env struct {
	Dir        string // everything lives under here
	Sandbox    string // canonical path of the sandbox directory
	CA         string // CA private key (ssh-keygen made)
	UserKey    string // a user private key
	UserCert   string // its certificate: id "agent-7", principals "logs,deploy"
	KnownHosts string
	AuditPath  string
	Addr       string
	HostKey    gossh.PublicKey
	Server     *sshserver.Server
	// Policy is the server's policy source, holding the set loaded from
	// Options.Policies; Set swaps in another, as a reload does.
	Policy *Swap
}

// Options changes what Start builds.
type Options struct {
	// Policies maps file names to Cedar text; "{{SANDBOX}}" is replaced by
	// the sandbox's canonical path.
	Policies map[string]string
	// Files maps sandbox-relative names to contents.
	Files  map[string]string
	Limits sshserver.Limits
	// Worker replaces the worker command; nil runs scripts in this test
	// binary re-executed as a worker (see Main).
	Worker func() *exec.Cmd
	// Log receives the server's log; nil discards it.
	Log logrus.FieldLogger
	// WorkerPool is Config.WorkerPool.
	WorkerPool int
	// WorkerParked is Config.WorkerParked.
	WorkerParked int
	// Observer is Config.Observer.
	Observer sshserver.Observer
	// ServiceManager is Config.ServiceManager.
	ServiceManager []string
	// AuditPath is where the audit log is written; "" means audit.log in
	// the test's directory.
	AuditPath string
	// AuditWriter, if set, is the audit log instead of a file at
	// AuditPath (Env.Audit then reads nothing); the test closes it.
	AuditWriter *audit.Writer
}

// Start builds keys with ssh-keygen, writes the sandbox and policies and
// starts a server on 127.0.0.1:0. It is stopped when the test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	dir := t.TempDir()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Dir: real, Sandbox: filepath.Join(real, "sandbox")}
	e.CA = NewKey(t, real, "ca")
	e.UserKey = NewKey(t, real, "user")
	e.UserCert = Cert(t, e.CA, e.UserKey+".pub", "agent-7", "logs,deploy", "-V", "-5m:+1h", "-z", "7")
	for name, content := range opts.Files {
		p := filepath.Join(e.Sandbox, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o644))
	}
	must(t, os.MkdirAll(e.Sandbox, 0o755))
	pdir := filepath.Join(real, "policies")
	must(t, os.Mkdir(pdir, 0o755))
	for name, text := range opts.Policies {
		must(t, os.WriteFile(filepath.Join(pdir, name), []byte(strings.ReplaceAll(text, "{{SANDBOX}}", e.Sandbox)), 0o644))
	}
	ps, err := authz.Load(pdir)
	if err != nil {
		t.Fatalf("load policies: %v", err)
	}
	e.Policy = &Swap{}
	e.Policy.Set(ps)
	cas, err := keys.LoadTrustedCAs(e.CA + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e.HostKey = hostSigner.PublicKey()
	e.AuditPath = filepath.Join(real, "audit.log")
	if opts.AuditPath != "" {
		e.AuditPath = opts.AuditPath
	}
	aw := opts.AuditWriter
	if aw == nil {
		if aw, err = audit.Open(e.AuditPath); err != nil {
			t.Fatal(err)
		}
	}
	if opts.Log != nil {
		aw.Notify(func(err error) {
			if err != nil {
				opts.Log.WithError(err).Error("audit log unwritable: operations stopped, new sessions refused")
			} else {
				opts.Log.Info("audit log writable again")
			}
		})
	}
	worker := opts.Worker
	if worker == nil {
		worker = TestWorker(t)
	}
	srv, err := sshserver.New(sshserver.Config{
		HostSigners:  []gossh.Signer{hostSigner},
		Auth:         &keys.CertRules{CAs: cas},
		Policy:       e.Policy,
		Audit:        aw,
		Limits:       opts.Limits,
		Worker:       worker,
		WorkerPool:   opts.WorkerPool,
		WorkerParked: opts.WorkerParked,
		Observer:     opts.Observer,
		Log:          opts.Log,

		ServiceManager: opts.ServiceManager,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Addr = ln.Addr().String()
	e.Server = srv
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		aw.Close()
	})
	host, port, _ := strings.Cut(e.Addr, ":")
	e.KnownHosts = filepath.Join(real, "known_hosts")
	line := "[" + host + "]:" + port + " " + string(gossh.MarshalAuthorizedKey(e.HostKey))
	must(t, os.WriteFile(e.KnownHosts, []byte(line), 0o644))
	return e
}

// Static is a PolicySource that always returns one set.
type Static struct{ Set *authz.PolicySet }

// Current returns the set.
func (s Static) Current() *authz.PolicySet { return s.Set }

// SSH runs the stock ssh client as login with the default user key and
// certificate; the last arg is the remote command.
func (e *Env) SSH(t testing.TB, login string, args ...string) SSHResult {
	t.Helper()
	return SSH(t, e.KnownHosts, e.Addr, login, e.UserKey, e.UserCert, args...)
}

// Audit returns the audit log's events so far, each as a map.
func (e *Env) Audit(t testing.TB) []map[string]any {
	t.Helper()
	return ReadAudit(t, e.AuditPath)
}

// ReadAudit returns the events of the audit log at path, each as a map; a
// line that is not JSON fails the test.
func ReadAudit(t testing.TB, path string) []map[string]any {
	t.Helper()
	return (&AuditTail{Path: path}).Events(t)
}

// AuditTail reads an audit log as it grows: each Events call parses only
// the lines completed since the one before, so a test that polls a log
// many sessions write to does not parse it whole each time. Not safe for
// concurrent use.
type AuditTail struct {
	Path   string
	off    int64
	events []map[string]any
}

// Events returns every complete line of the log so far, decoded. A last
// line with no newline yet is being written and is left for the next call.
func (a *AuditTail) Events(t testing.TB) []map[string]any {
	t.Helper()
	f, err := os.Open(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, a.off, 1<<62))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndexByte(b, '\n')
	if i < 0 {
		return a.events
	}
	for _, line := range bytes.Split(b[:i], []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		a.events = append(a.events, m)
	}
	a.off += int64(i + 1)
	return a.events
}

// WaitAudit polls the audit log until match returns true for some event or
// the timeout passes; session.end lines are written after the client has
// its exit status, so tests wait for them.
func (e *Env) WaitAudit(t testing.TB, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, ev := range e.Audit(t) {
			if match(ev) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching audit event in:\n%v", e.Audit(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ClientConfig returns an x/crypto client config for login that
// authenticates with signer and checks the server's host key.
func (e *Env) ClientConfig(login string, signer gossh.Signer) *gossh.ClientConfig {
	return &gossh.ClientConfig{
		User:            login,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.FixedHostKey(e.HostKey),
		Timeout:         10 * time.Second,
	}
}

// UserSigner returns the default user key with its certificate, for
// x/crypto clients.
func (e *Env) UserSigner(t testing.TB) gossh.Signer {
	t.Helper()
	return CertSigner(t, e.UserKey, e.UserCert)
}

// CertSigner loads the private key at key and the certificate at cert.
func CertSigner(t testing.TB, key, cert string) gossh.Signer {
	t.Helper()
	s, err := keys.LoadSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := pub.(*gossh.Certificate)
	if !ok {
		t.Fatalf("%s is not a certificate", cert)
	}
	cs, err := gossh.NewCertSigner(c, s)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
