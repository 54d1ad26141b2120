package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// HostOptions say how StartHost builds one server of a fleet: servers
// that share a user CA, an audit log and policy sets, as the hosts a
// client fans out to.
type HostOptions struct {
	// CAPub is the path of the trusted user CA's public key.
	CAPub string
	// Policy is the server's policy set.
	Policy *authz.PolicySet
	// Audit receives the server's audit events.
	Audit  audit.Sink
	Limits sshserver.Limits
	// HostSigner is the host key; nil makes a new one.
	HostSigner gossh.Signer
	// WorkerPool is Config.WorkerPool; 0 means none (-1), so idle fleets
	// keep no worker processes.
	WorkerPool int
	// Worker replaces the worker command; nil re-executes the test binary
	// (see Main).
	Worker func() *exec.Cmd
	// ServiceManager is Config.ServiceManager: the command svc.* runs.
	ServiceManager []string
}

// Host is a running server of a fleet.
type Host struct {
	Addr    string // 127.0.0.1:port
	Host    string // 127.0.0.1
	Port    string
	HostKey gossh.PublicKey
	Server  *sshserver.Server
}

// KnownHostsLine is the known_hosts line naming the host's key.
func (h *Host) KnownHostsLine() string {
	return "[" + h.Host + "]:" + h.Port + " " + string(gossh.MarshalAuthorizedKey(h.HostKey))
}

// StartHost starts a server on 127.0.0.1:0, stopped when the test ends.
func StartHost(t testing.TB, opts HostOptions) *Host {
	t.Helper()
	cas, err := keys.LoadTrustedCAs(opts.CAPub)
	if err != nil {
		t.Fatal(err)
	}
	hs := opts.HostSigner
	if hs == nil {
		if hs, _, err = keys.GenerateKey(); err != nil {
			t.Fatal(err)
		}
	}
	wk := opts.Worker
	if wk == nil {
		wk = TestWorker(t)
	}
	pool := opts.WorkerPool
	if pool == 0 {
		pool = -1
	}
	srv, err := sshserver.New(sshserver.Config{
		HostSigners: []gossh.Signer{hs},
		Auth:        &keys.CertRules{CAs: cas},
		Policy:      Static{Set: opts.Policy},
		Audit:       opts.Audit,
		Limits:      opts.Limits,
		Worker:      wk,
		WorkerPool:  pool,

		ServiceManager: opts.ServiceManager,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	h := &Host{Addr: ln.Addr().String(), HostKey: hs.PublicKey(), Server: srv}
	h.Host, h.Port, _ = net.SplitHostPort(h.Addr)
	return h
}

// LoadPolicy writes text (with "{{SANDBOX}}" replaced by sandbox) as the
// one policy file of a new directory under dir and loads it.
func LoadPolicy(t testing.TB, dir, name, sandbox, text string) *authz.PolicySet {
	t.Helper()
	pdir := filepath.Join(dir, "policy-"+name)
	must(t, os.MkdirAll(pdir, 0o755))
	must(t, os.WriteFile(filepath.Join(pdir, name+".cedar"), []byte(strings.ReplaceAll(text, "{{SANDBOX}}", sandbox)), 0o644))
	ps, err := authz.Load(pdir)
	if err != nil {
		t.Fatalf("load policy %s: %v", name, err)
	}
	return ps
}
