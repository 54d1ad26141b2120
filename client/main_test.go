package client_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixture is a user CA, a user key with its certificate beside it
// (principals "logs"), a sandbox, and the policy sets the tests' servers
// use.
type fixture struct {
	dir, sandbox string
	caKey, caPub string
	userKey      string // userKey-cert.pub is its certificate
	audit        *audit.Writer
	auditPath    string
	readPolicy   *authz.PolicySet // logs may read the sandbox's pub/
	denyPolicy   *authz.PolicySet // everything forbidden by policy "deny-all"
}

const readPolicy = `@id("read-pub")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::"{{SANDBOX}}/pub");`

const denyPolicy = `@id("deny-all")
forbid (principal, action, resource);`

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: real, sandbox: filepath.Join(real, "sandbox")}
	mustWrite(t, filepath.Join(f.sandbox, "pub", "motd"), "hello fleet\n")
	f.caKey = testenv.NewKey(t, real, "ca")
	f.caPub = f.caKey + ".pub"
	f.userKey = testenv.NewKey(t, real, "id_ed25519")
	testenv.Cert(t, f.caKey, f.userKey+".pub", "agent-7", "logs", "-V", "-5m:+1h")
	f.auditPath = filepath.Join(real, "audit.log")
	if f.audit, err = audit.Open(f.auditPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.audit.Close() })
	f.readPolicy = testenv.LoadPolicy(t, real, "read", f.sandbox, readPolicy)
	f.denyPolicy = testenv.LoadPolicy(t, real, "deny", f.sandbox, denyPolicy)
	return f
}

// host starts a server trusting the fixture's CA with policy ps.
func (f *fixture) host(t testing.TB, ps *authz.PolicySet) *testenv.Host {
	t.Helper()
	return testenv.StartHost(t, testenv.HostOptions{CAPub: f.caPub, Policy: ps, Audit: f.audit})
}

// knownHosts writes a known_hosts file of lines and returns its path.
func (f *fixture) knownHosts(t testing.TB, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		if len(l) > 0 && l[len(l)-1] != '\n' {
			b = append(b, '\n')
		}
	}
	mustWrite(t, p, string(b))
	return p
}

func mustWrite(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
