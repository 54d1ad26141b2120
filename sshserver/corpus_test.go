package sshserver_test

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// corpusCase is one certificate (or plain key) and the answers keyhole and
// OpenSSH's sshd give for it.
type corpusCase struct {
	name string
	// make builds the key and returns its certificate path ("" for a
	// plain key); key is the private key path.
	make func(t *testing.T, c *corpus, key string) string
	// login overrides the login name (default: the current user).
	login string
	// reason is the reason keyhole's audit line must name when it
	// refuses; "" means keyhole accepts.
	reason string
	// sshdDiffers, when set, says why OpenSSH gives the other answer. Every
	// such case is a deliberate, documented difference.
	sshdDiffers string
	// sshdSkip, when set, says why sshd has no equivalent of the case.
	sshdSkip string
}

// corpus is the shared material of TestIdentityCorpus.
type corpus struct {
	dir                     string
	ca, otherCA, rsaCA      string // private key paths (ssh-keygen made)
	revokedCA               string // trusted, but its key is in the KRL
	login                   string
	revokedKey, hashedKey   string // plain keys revoked by key and by hash
	listedKey, revokedPlain string
}

func (c *corpus) cert(t *testing.T, ca, key, id, principals string, extra ...string) string {
	t.Helper()
	return testenv.Cert(t, ca, key+".pub", id, principals, extra...)
}

var identityCorpus = []corpusCase{
	{name: "valid", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "1")
	}},
	{name: "valid-forever", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-z", "2")
	}},
	{name: "valid-second-principal", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", "deploy,"+c.login, "-V", "-5m:+1h", "-z", "3")
	}},
	{name: "expired", reason: "expired", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-2h:-1h", "-z", "4")
	}},
	{name: "not-yet-valid", reason: "not yet valid", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "+1h:+2h", "-z", "5")
	}},
	{name: "unknown-ca", reason: "unknown CA", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.otherCA, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "6")
	}},
	{name: "principal-not-allowed", reason: "principal not allowed", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", "someone-else", "-V", "-5m:+1h", "-z", "7")
	}},
	{name: "no-principals", reason: "no principals", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", "", "-V", "-5m:+1h", "-z", "8")
	}},
	{name: "source-address-match", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "9", "-O", "source-address=10.0.0.0/8,127.0.0.1/32")
	}},
	{name: "source-address-mismatch", reason: "source address not allowed", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "10", "-O", "source-address=10.0.0.0/8")
	}},
	{name: "force-command", reason: "unsupported critical option", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "11", "-O", "force-command=/bin/true")
	}, sshdDiffers: "sshd runs the forced command; keyhole has no commands to force, so it refuses rather than ignore a restriction"},
	{name: "verify-required", reason: "unsupported critical option", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "12", "-O", "verify-required")
	}, sshdDiffers: "sshd ignores verify-required on a key that is not a FIDO key; keyhole refuses the option, as DESIGN.md says"},
	{name: "unknown-critical-option", reason: "unsupported critical option", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "13", "-O", "critical:frobnicate@example.com=yes")
	}},
	{name: "unknown-extension", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "14", "-O", "extension:note@example.com=hi")
	}},
	// The stock client does not offer a host certificate for user
	// authentication, only its plain key; keyhole's refusal of a host
	// certificate offered by another client is tested in
	// TestHostCertificateRefused and keys' TestCertRules.
	{name: "host-certificate", reason: "key not listed", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "15", "-h")
	}},
	{name: "sha1-rsa-ca-signature", reason: "ssh-rsa (SHA-1)", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.rsaCA, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "16", "-t", "ssh-rsa")
	}},
	{name: "sha2-rsa-ca-signature", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.rsaCA, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "17", "-t", "rsa-sha2-512")
	}},
	{name: "empty-key-id", reason: "no key id", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "", c.login, "-V", "-5m:+1h", "-z", "18")
	}, sshdDiffers: "sshd accepts a certificate without a key id; keyhole needs it as the user id of the Cedar principal"},
	{name: "revoked-serial", reason: "revoked: serial 100", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "100")
	}},
	{name: "revoked-serial-range", reason: "revoked: serial 205", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "205")
	}},
	{name: "serial-after-revoked-range", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "211")
	}},
	{name: "revoked-serial-other-ca", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.rsaCA, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "100")
	}},
	{name: "serial-zero-not-revocable-by-serial", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "0")
	}},
	{name: "revoked-key-id", reason: `revoked: key id "revoked-id"`, make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, k, "revoked-id", c.login, "-V", "-5m:+1h", "-z", "19")
	}},
	{name: "revoked-key", reason: "revoked: key SHA256:", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, c.revokedKey, "agent-1", c.login, "-V", "-5m:+1h", "-z", "20")
	}},
	{name: "revoked-key-hash", reason: "revoked: key hash SHA256:", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.ca, c.hashedKey, "agent-1", c.login, "-V", "-5m:+1h", "-z", "21")
	}},
	{name: "revoked-ca-key", reason: "revoked: CA key", make: func(t *testing.T, c *corpus, k string) string {
		return c.cert(t, c.revokedCA, k, "agent-1", c.login, "-V", "-5m:+1h", "-z", "22")
	}},
	{name: "plain-key-listed", make: func(t *testing.T, c *corpus, k string) string {
		return ""
	}, sshdSkip: "keys_file (principals= on a plain key line) has no sshd equivalent"},
	{name: "plain-key-unlisted", reason: "key not listed", make: func(t *testing.T, c *corpus, k string) string {
		return ""
	}, sshdSkip: "keys_file has no sshd equivalent"},
	{name: "plain-key-revoked", reason: "revoked: key SHA256:", make: func(t *testing.T, c *corpus, k string) string {
		return ""
	}, sshdSkip: "keys_file has no sshd equivalent"},
}

// TestIdentityCorpus checks keyhole's accept/refuse answer and audit reason
// for certificates made by the real ssh-keygen covering every identity
// rule, and checks the same certificates against a real OpenSSH sshd
// (started here, on loopback, with the same CA and KRL) so that keyhole
// answers as OpenSSH does, apart from the documented differences.
func TestIdentityCorpus(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	testenv.NeedBinary(t, "ssh-keygen")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dir, err := filepath.EvalSymlinks(tmp)
	if err != nil {
		t.Fatal(err)
	}
	c := &corpus{dir: dir, login: me.Username}
	c.ca = testenv.NewKey(t, dir, "ca")
	c.otherCA = testenv.NewKey(t, dir, "other-ca")
	c.revokedCA = testenv.NewKey(t, dir, "revoked-ca")
	c.rsaCA = filepath.Join(dir, "rsa-ca")
	testenv.Keygen(t, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", c.rsaCA)
	c.revokedKey = goKey(t, dir, "revoked-key")
	c.hashedKey = goKey(t, dir, "hashed-key")

	// Trusted CAs: ca, rsa-ca and revoked-ca (whose key the KRL revokes).
	var trusted []byte
	for _, ca := range []string{c.ca, c.rsaCA, c.revokedCA} {
		b, err := os.ReadFile(ca + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		trusted = append(trusted, b...)
	}
	trustedPath := writeTestFile(t, dir, "trusted-ca", trusted)

	keysOf := map[string]string{}
	for i, tc := range identityCorpus {
		keysOf[tc.name] = goKey(t, dir, fmt.Sprintf("user-%02d", i))
	}
	// The KRL, made by ssh-keygen -k: serial, range, key id, key, hash,
	// the revoked CA's key, and a plain key.
	pub := func(p string) string {
		b, err := os.ReadFile(p + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	hashedPub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(pub(c.hashedKey)))
	if err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf("serial: 100\nserial: 200-210\nid: revoked-id\nkey: %s\nhash: %s\nkey: %s\nkey: %s\n",
		pub(c.revokedKey), gossh.FingerprintSHA256(hashedPub), pub(c.revokedCA), pub(keysOf["plain-key-revoked"]))
	specPath := writeTestFile(t, dir, "krl-spec", []byte(spec))
	krlPath := filepath.Join(dir, "revoked.krl")
	testenv.Keygen(t, "-k", "-f", krlPath, "-s", c.ca+".pub", specPath)

	// keys_file for the plain-key rows.
	keysFile := fmt.Sprintf("principals=%q %s listed-bot\nprincipals=%q %s revoked-bot\n",
		c.login, firstTwoFields(pub(keysOf["plain-key-listed"])), c.login, firstTwoFields(pub(keysOf["plain-key-revoked"])))
	keysPath := writeTestFile(t, dir, "keys", []byte(keysFile))

	kh := startCorpusKeyhole(t, dir, trustedPath, keysPath, krlPath)
	certs := map[string]string{}
	for _, tc := range identityCorpus {
		certs[tc.name] = tc.make(t, c, keysOf[tc.name])
	}

	t.Run("keyhole", func(t *testing.T) {
		for _, tc := range identityCorpus {
			t.Run(tc.name, func(t *testing.T) {
				key, cert := keysOf[tc.name], certs[tc.name]
				key = c.keyFor(tc.name, key)
				login := c.login
				res := testenv.SSH(t, kh.knownHosts, kh.addr, login, key, cert, `print("ok")`)
				accepted := checkAnswer(t, res, "ok\n")
				if want := tc.reason == ""; accepted != want {
					t.Fatalf("keyhole accepted = %v, want %v (stderr %q)", accepted, want, res.Stderr)
				}
				if accepted {
					return
				}
				fp := fingerprintOf(t, key)
				kh.env.WaitAudit(t, func(ev map[string]any) bool {
					return ev["event"] == "auth.refused" && ev["fingerprint"] == fp && ev["source"] == "127.0.0.1" &&
						strings.Contains(fmt.Sprint(ev["reason"]), tc.reason)
				})
			})
		}
	})

	sshd := startSSHD(t, dir, trustedPath, krlPath)
	defer func() {
		// A corrupt KRL refuses everyone, on both servers (sshd reads the
		// KRL at each authentication; keyhole on reload).
		writeTestFile(t, dir, "revoked.krl", []byte("SSHKRL\n\x00 truncated"))
		if err := kh.auth.Reload(); err == nil {
			t.Error("reload of a corrupt KRL reported no error")
		}
		valid := certs["valid"]
		res := testenv.SSH(t, kh.knownHosts, kh.addr, c.login, keysOf["valid"], valid, `print("ok")`)
		if checkAnswer(t, res, "ok\n") {
			t.Error("keyhole accepted a certificate while the KRL is corrupt")
		}
		fp := fingerprintOf(t, keysOf["valid"])
		kh.env.WaitAudit(t, func(ev map[string]any) bool {
			return ev["event"] == "auth.refused" && ev["fingerprint"] == fp && ev["reason"] == "revocation list unusable"
		})
		if sshd != nil {
			res := testenv.SSH(t, sshd.knownHosts, sshd.addr, c.login, keysOf["valid"], valid, "true")
			if checkAnswer(t, res, "") {
				t.Error("sshd accepted a certificate while the KRL is corrupt")
			}
		}
	}()
	if sshd == nil {
		return
	}
	t.Run("sshd", func(t *testing.T) {
		for _, tc := range identityCorpus {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				if tc.sshdSkip != "" {
					t.Skip(tc.sshdSkip)
				}
				key, cert := keysOf[tc.name], certs[tc.name]
				key = c.keyFor(tc.name, key)
				res := testenv.SSH(t, sshd.knownHosts, sshd.addr, c.login, key, cert, "true")
				accepted := checkAnswer(t, res, "")
				want := tc.reason == ""
				if tc.sshdDiffers != "" {
					want = !want
				}
				if accepted != want {
					t.Errorf("sshd accepted = %v, want %v; keyhole and OpenSSH disagree\nstderr: %s\nsshd log:\n%s",
						accepted, want, res.Stderr, sshd.sshd.Log())
				}
			})
		}
	})
}

// goKey writes a new ed25519 key pair at dir/name in OpenSSH format. User
// keys are made here rather than by ssh-keygen to save process starts;
// every certificate is still made by ssh-keygen.
func goKey(t *testing.T, dir, name string) string {
	t.Helper()
	_, priv, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := keys.WriteKeyPair(p, priv, name); err != nil {
		t.Fatal(err)
	}
	return p
}

// keyFor returns the private key a case authenticates with: its own, or
// one of the keys the KRL revokes.
func (c *corpus) keyFor(name, own string) string {
	switch name {
	case "revoked-key":
		return c.revokedKey
	case "revoked-key-hash":
		return c.hashedKey
	}
	return own
}

func firstTwoFields(line string) string {
	f := strings.Fields(line)
	return f[0] + " " + f[1]
}

func writeTestFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fingerprintOf(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := gossh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return gossh.FingerprintSHA256(k)
}

// checkAnswer turns one ssh run into accepted (true) or refused (false),
// failing the test on anything else.
func checkAnswer(t *testing.T, res testenv.SSHResult, wantStdout string) bool {
	t.Helper()
	switch {
	case res.Exit == 0 && res.Stdout == wantStdout:
		return true
	case res.Exit == 255 && strings.Contains(res.Stderr, "Permission denied"):
		if res.Stdout != "" {
			t.Errorf("refused, yet stdout = %q", res.Stdout)
		}
		return false
	}
	t.Fatalf("neither accepted nor refused: exit %d stdout %q stderr %q", res.Exit, res.Stdout, res.Stderr)
	return false
}

type corpusServer struct {
	addr, knownHosts string
	env              *testenv.Env // for its audit helpers
	auth             *keys.Authenticator
	sshd             *testenv.SSHD // for its log
}

// startCorpusKeyhole starts keyhole with the real Authenticator (trusted
// CAs, keys file, KRL) on 127.0.0.1:0.
func startCorpusKeyhole(t *testing.T, dir, trusted, keysFile, krl string) *corpusServer {
	t.Helper()
	pdir := filepath.Join(dir, "policies")
	if err := os.Mkdir(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, pdir, "none.cedar", []byte("@id(\"nothing\")\nforbid (principal, action, resource);\n"))
	ps, err := authz.Load(pdir)
	if err != nil {
		t.Fatal(err)
	}
	cas, err := keys.LoadTrustedCAs(trusted)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := keys.NewAuthenticator(keys.AuthConfig{CAs: cas, KeysFile: keysFile, RevokedKeys: krl})
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.log")
	aw, err := audit.Open(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sshserver.New(sshserver.Config{
		HostSigners: []gossh.Signer{host},
		Auth:        auth,
		Policy:      testenv.Static{Set: ps},
		Audit:       aw,
		Worker:      testenv.TestWorker(t),
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
		aw.Close()
	})
	s := &corpusServer{addr: ln.Addr().String(), env: &testenv.Env{AuditPath: auditPath}, auth: auth}
	s.knownHosts = knownHostsFor(t, dir, "keyhole_known_hosts", s.addr, host.PublicKey())
	return s
}

func knownHostsFor(t *testing.T, dir, name, addr string, key gossh.PublicKey) string {
	t.Helper()
	h, p, _ := net.SplitHostPort(addr)
	return writeTestFile(t, dir, name, []byte("["+h+"]:"+p+" "+string(gossh.MarshalAuthorizedKey(key))))
}

// startSSHD starts OpenSSH's sshd on 127.0.0.1 with the same trusted CAs
// and KRL, and no authorized keys. It returns nil (after t.Skip in a
// subtest) only when the sshd binary is not installed.
func startSSHD(t *testing.T, dir, trusted, krl string) *corpusServer {
	t.Helper()
	if testenv.SSHDPath() == "" {
		t.Run("sshd", func(t *testing.T) { t.Skip("sshd not installed") })
		return nil
	}
	// NoReexec: one process start less per connection (process starts
	// are the slow part of every sshd connection).
	d := testenv.StartSSHD(t, testenv.SSHDOptions{Dir: dir, TrustedUserCAKeys: trusted, RevokedKeys: krl, NoReexec: true})
	return &corpusServer{addr: d.Addr, knownHosts: d.KnownHosts, sshd: d}
}
