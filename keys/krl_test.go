package keys_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

// keygen runs the stock ssh-keygen, skipping the test when it is missing.
func keygen(t *testing.T, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed")
	}
	out, err := exec.Command("ssh-keygen", args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("ssh-keygen %v: %v", args, err)
	}
	return string(out), 0
}

// krlFixture is a CA, a second CA, and certificates and plain keys that
// the KRL tests revoke or not.
type krlFixture struct {
	dir          string
	ca, otherCA  ssh.Signer
	caPub        string // path of the CA public key
	certs        map[string]*ssh.Certificate
	plain        map[string]ssh.PublicKey
	revokedCAKey ssh.Signer
}

func newKRLFixture(t *testing.T) *krlFixture {
	t.Helper()
	f := &krlFixture{
		dir:   t.TempDir(),
		ca:    mustSigner(t),
		certs: map[string]*ssh.Certificate{},
		plain: map[string]ssh.PublicKey{},
	}
	f.otherCA = mustSigner(t)
	f.revokedCAKey = mustSigner(t)
	f.caPub = f.write(t, "ca.pub", ssh.MarshalAuthorizedKey(f.ca.PublicKey()))
	cert := func(name string, by ssh.Signer, serial uint64, id string) {
		c, err := keys.SignUserCert(by, keys.CertRequest{
			Key: mustSigner(t).PublicKey(), KeyID: id, Principals: []string{"logs"},
			Serial: serial, Validity: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		f.certs[name] = c
	}
	cert("serial-5", f.ca, 5, "agent-1")
	cert("serial-6", f.ca, 6, "agent-1")
	cert("serial-9", f.ca, 9, "agent-1")
	cert("serial-10", f.ca, 10, "agent-1")
	cert("serial-15", f.ca, 15, "agent-1")
	cert("serial-20", f.ca, 20, "agent-1")
	cert("serial-21", f.ca, 21, "agent-1")
	cert("serial-101", f.ca, 101, "agent-1") // dense odd serials: a bitmap
	cert("serial-102", f.ca, 102, "agent-1")
	cert("serial-5-other-ca", f.otherCA, 5, "agent-1")
	cert("serial-0", f.ca, 0, "agent-1")
	cert("id-agent-7", f.ca, 30, "agent-7")
	cert("id-agent-7-other-ca", f.otherCA, 30, "agent-7")
	cert("id-agent-70", f.ca, 31, "agent-70")
	cert("by-revoked-ca", f.revokedCAKey, 32, "agent-1")
	for _, name := range []string{"key", "key-sha256", "key-hash", "key-file", "innocent"} {
		f.plain[name] = mustSigner(t).PublicKey()
	}
	// A certificate whose certified key is revoked as a plain key.
	c, err := keys.SignUserCert(f.ca, keys.CertRequest{
		Key: f.plain["key"], KeyID: "agent-1", Principals: []string{"logs"}, Serial: 40, Validity: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.certs["cert-of-revoked-key"] = c
	return f
}

func (f *krlFixture) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// revokedByKeygen returns the names whose keys "ssh-keygen -Q" reports as
// revoked by the KRL at krl.
func (f *krlFixture) revokedByKeygen(t *testing.T, krl string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	check := func(name string, key ssh.PublicKey) {
		p := f.write(t, name+".pub", ssh.MarshalAuthorizedKey(key))
		out, code := keygen(t, "-Q", "-f", krl, p)
		switch {
		case code == 0 && strings.Contains(out, ": ok"):
		case code == 1 && strings.Contains(out, ": REVOKED"):
			got[name] = true
		default:
			t.Fatalf("ssh-keygen -Q %s: exit %d: %s", name, code, out)
		}
	}
	for name, c := range f.certs {
		check(name, c)
	}
	for name, k := range f.plain {
		check(name, k)
	}
	return got
}

// revokedByKeyhole returns the names whose keys k revokes.
func (f *krlFixture) revokedByKeyhole(t *testing.T, k *keys.KRL) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for name, c := range f.certs {
		if err := k.Revoked(c); err != nil {
			if !errors.Is(err, keys.ErrRevoked) {
				t.Fatalf("%s: %v", name, err)
			}
			got[name] = true
		}
	}
	for name, key := range f.plain {
		if k.Revoked(key) != nil {
			got[name] = true
		}
	}
	return got
}

func setString(m map[string]bool) string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}

var wantRevoked = map[string]bool{
	"serial-5": true, "serial-10": true, "serial-15": true, "serial-20": true,
	"serial-101": true, "id-agent-7": true, "by-revoked-ca": true,
	"key": true, "key-sha256": true, "key-hash": true, "key-file": true,
	"cert-of-revoked-key": true,
}

// TestKRLFromSSHKeygen reads KRLs made by the real ssh-keygen -k with every
// kind of record and checks that keyhole revokes exactly what ssh-keygen -Q
// says is revoked.
func TestKRLFromSSHKeygen(t *testing.T) {
	t.Parallel()
	f := newKRLFixture(t)
	var spec strings.Builder
	spec.WriteString("serial: 5\nserial: 10-20\nid: agent-7\n")
	for s := 101; s <= 199; s += 2 {
		fmt.Fprintf(&spec, "serial: %d\n", s)
	}
	fmt.Fprintf(&spec, "key: %s", ssh.MarshalAuthorizedKey(f.plain["key"]))
	fmt.Fprintf(&spec, "sha256: %s", ssh.MarshalAuthorizedKey(f.plain["key-sha256"]))
	fmt.Fprintf(&spec, "hash: %s\n", ssh.FingerprintSHA256(f.plain["key-hash"]))
	fmt.Fprintf(&spec, "key: %s", ssh.MarshalAuthorizedKey(f.revokedCAKey.PublicKey()))
	specPath := f.write(t, "spec", []byte(spec.String()))
	plainPath := f.write(t, "plain.pub", ssh.MarshalAuthorizedKey(f.plain["key-file"]))
	krlPath := filepath.Join(f.dir, "krl")
	keygen(t, "-k", "-f", krlPath, "-s", f.caPub, specPath, plainPath)

	k, err := keys.LoadKRL(krlPath)
	if err != nil {
		t.Fatal(err)
	}
	ref := f.revokedByKeygen(t, krlPath)
	if setString(ref) != setString(wantRevoked) {
		t.Fatalf("fixture: ssh-keygen revokes %s, want %s", setString(ref), setString(wantRevoked))
	}
	if got := f.revokedByKeyhole(t, k); setString(got) != setString(ref) {
		t.Errorf("keyhole revokes %s\nssh-keygen revokes %s", setString(got), setString(ref))
	}
	for name, detail := range map[string]string{
		"serial-15":  "revoked: serial 15",
		"id-agent-7": `revoked: key id "agent-7"`,
		"key":        "revoked: key SHA256:",
	} {
		var target ssh.PublicKey = f.plain[name]
		if c, ok := f.certs[name]; ok {
			target = c
		}
		if err := k.Revoked(target); err == nil || !strings.Contains(err.Error(), detail) {
			t.Errorf("%s: err = %v, want %q", name, err, detail)
		}
	}

	// Re-encoding what was read keeps every answer.
	again := f.write(t, "krl-again", k.Marshal())
	if got := f.revokedByKeygen(t, again); setString(got) != setString(ref) {
		t.Errorf("after re-encoding, ssh-keygen revokes %s, want %s", setString(got), setString(ref))
	}
}

// TestKRLWriterAgreesWithSSHKeygen builds a KRL with keyhole's writer and
// checks ssh-keygen -Q against it.
func TestKRLWriterAgreesWithSSHKeygen(t *testing.T) {
	t.Parallel()
	f := newKRLFixture(t)
	k := keys.NewKRL()
	k.Version = 3
	k.Comment = "keyhole test"
	k.Generated = time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.RevokeSerials(f.ca.PublicKey(), 5, 5))
	must(k.RevokeSerials(f.ca.PublicKey(), 10, 20))
	for s := uint64(101); s <= 199; s += 2 {
		must(k.RevokeSerials(f.ca.PublicKey(), s, s))
	}
	must(k.RevokeKeyID(f.ca.PublicKey(), "agent-7"))
	k.RevokeKey(f.plain["key"])
	k.RevokeKeyHash(f.plain["key-sha256"])
	k.RevokeKeyHash(f.plain["key-hash"])
	k.RevokeKey(f.plain["key-file"])
	k.RevokeKey(f.revokedCAKey.PublicKey())
	p := f.write(t, "krl", k.Marshal())
	if got := f.revokedByKeygen(t, p); setString(got) != setString(wantRevoked) {
		t.Errorf("ssh-keygen revokes %s, want %s", setString(got), setString(wantRevoked))
	}
	if got := f.revokedByKeyhole(t, k); setString(got) != setString(wantRevoked) {
		t.Errorf("keyhole revokes %s, want %s", setString(got), setString(wantRevoked))
	}
	back, err := keys.ParseKRL(k.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Marshal(), k.Marshal()) || back.Version != 3 || back.Comment != "keyhole test" {
		t.Error("parse(marshal(k)) differs from k")
	}
	// A key id revoked for every CA (an empty CA key in the file).
	wild := keys.NewKRL()
	if err := wild.RevokeKeyID(nil, "agent-7"); err != nil {
		t.Fatal(err)
	}
	wp := f.write(t, "krl-wildcard", wild.Marshal())
	want := map[string]bool{"id-agent-7": true, "id-agent-7-other-ca": true}
	if got := f.revokedByKeygen(t, wp); setString(got) != setString(want) {
		t.Errorf("wildcard: ssh-keygen revokes %s, want %s", setString(got), setString(want))
	}
	if got := f.revokedByKeyhole(t, wild); setString(got) != setString(want) {
		t.Errorf("wildcard: keyhole revokes %s, want %s", setString(got), setString(want))
	}

	// ssh-keygen -k -u extends a KRL written by keyhole.
	spec := f.write(t, "spec2", []byte("serial: 6\n"))
	keygen(t, "-k", "-u", "-f", p, "-s", f.caPub, spec)
	k2, err := keys.LoadKRL(p)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Revoked(f.certs["serial-6"]) == nil || k2.Revoked(f.certs["serial-15"]) == nil {
		t.Error("extended KRL lost or missed a serial")
	}
}

func TestKRLSerialMerging(t *testing.T) {
	t.Parallel()
	ca := mustSigner(t).PublicKey()
	k := keys.NewKRL()
	for _, r := range [][2]uint64{{10, 12}, {14, 15}, {13, 13}, {1, 1}, {3, 4}, {2, 2}, {100, 200}, {150, 300}, {1 << 63, ^uint64(0)}} {
		if err := k.RevokeSerials(ca, r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range [][2]uint64{{0, 3}, {5, 4}} {
		if err := k.RevokeSerials(ca, bad[0], bad[1]); err == nil {
			t.Errorf("RevokeSerials(%d, %d) accepted", bad[0], bad[1])
		}
	}
	back, err := keys.ParseKRL(k.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	for serial, want := range map[uint64]bool{
		1: true, 2: true, 4: true, 5: false, 9: false, 10: true, 13: true, 15: true, 16: false,
		99: false, 100: true, 300: true, 301: false, 1<<63 - 1: false, 1 << 63: true, ^uint64(0): true,
	} {
		c := &ssh.Certificate{Key: mustSigner(t).PublicKey(), Serial: serial, SignatureKey: ca, KeyId: "x"}
		if got := back.Revoked(c) != nil; got != want {
			t.Errorf("serial %d: revoked = %v, want %v", serial, got, want)
		}
	}
}

// TestKRLMalformed checks that every kind of damage is an error (callers
// then refuse every key).
func TestKRLMalformed(t *testing.T) {
	t.Parallel()
	ca := mustSigner(t).PublicKey()
	good := keys.NewKRL()
	if err := good.RevokeSerials(ca, 7, 9); err != nil {
		t.Fatal(err)
	}
	good.RevokeKeyHash(ca)
	enc := good.Marshal()
	header := enc[:8+4+8+8+8+4+4]
	withSection := func(typ byte, body []byte) []byte {
		out := append([]byte{}, header...)
		out = append(out, typ)
		out = append(out, byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
		return append(out, body...)
	}
	str := func(s string) []byte {
		return append([]byte{0, 0, 0, byte(len(s))}, s...)
	}
	tests := map[string][]byte{
		"empty":              {},
		"bad-magic":          append([]byte("SSHKRX\n\x00"), enc[8:]...),
		"bad-version":        append(append(append([]byte{}, enc[:8]...), 0, 0, 0, 2), enc[12:]...),
		"truncated-header":   enc[:20],
		"truncated-section":  enc[:len(enc)-3],
		"trailing-byte":      append(append([]byte{}, enc...), 1),
		"unknown-section":    withSection(9, nil),
		"signature-section":  withSection(4, str("x")),
		"critical-extension": withSection(255, append(append(str("x@y"), 1), str("")...)),
		"empty-key-section":  withSection(2, nil),
		"bad-explicit-key":   withSection(2, str("garbage")),
		"short-hash":         withSection(5, str("abc")),
		"serial-zero":        withSection(1, append(append(str(""), str("")...), append([]byte{0x20, 0, 0, 0, 8}, 0, 0, 0, 0, 0, 0, 0, 0)...)),
		"reversed-range": withSection(1, append(append(str(""), str("")...),
			append([]byte{0x21, 0, 0, 0, 16}, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 3)...)),
		"unknown-cert-subsection": withSection(1, append(append(str(""), str("")...), 0x50, 0, 0, 0, 0)),
		"negative-bitmap": withSection(1, append(append(str(""), str("")...),
			append([]byte{0x22, 0, 0, 0, 13}, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0x80)...)),
	}
	if _, err := keys.ParseKRL(enc); err != nil {
		t.Fatalf("good KRL: %v", err)
	}
	if _, err := keys.ParseKRL(withSection(255, append(append(str("x@y"), 0), str("")...))); err != nil {
		t.Errorf("non-critical extension refused: %v", err)
	}
	for name, data := range tests {
		if _, err := keys.ParseKRL(data); err == nil {
			t.Errorf("%s: parsed", name)
		} else if !strings.Contains(err.Error(), "malformed revocation list") {
			t.Errorf("%s: error %q does not say the list is malformed", name, err)
		}
	}
}

// FuzzParseKRL checks that no input crashes the parser and that whatever
// parses re-encodes to a fixed point. Run with go test -fuzz=FuzzParseKRL;
// the seeds run as a normal test.
func FuzzParseKRL(f *testing.F) {
	ca, _, err := keys.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	k := keys.NewKRL()
	_ = k.RevokeSerials(ca.PublicKey(), 3, 9)
	_ = k.RevokeSerials(ca.PublicKey(), 12, 12)
	_ = k.RevokeKeyID(nil, "agent-7")
	k.RevokeKey(ca.PublicKey())
	k.RevokeKeyHash(ca.PublicKey())
	f.Add(k.Marshal())
	f.Add(keys.NewKRL().Marshal())
	seeds, _ := filepath.Glob("testdata/krl/*.krl")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := keys.ParseKRL(data)
		if err != nil {
			return
		}
		enc := k.Marshal()
		k2, err := keys.ParseKRL(enc)
		if err != nil {
			t.Fatalf("re-encoded KRL does not parse: %v", err)
		}
		if !bytes.Equal(k2.Marshal(), enc) {
			t.Fatal("encoding is not a fixed point")
		}
	})
}

// BenchmarkKRL measures parsing a KRL of 100,000 scattered serials (as a
// reload does) and checking one certificate against it (as each login
// does).
func BenchmarkKRL(b *testing.B) {
	ca, _, err := keys.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	k := keys.NewKRL()
	for s := uint64(1); s <= 200_000; s += 2 {
		if err := k.RevokeSerials(ca.PublicKey(), s, s); err != nil {
			b.Fatal(err)
		}
	}
	data := k.Marshal()
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := keys.ParseKRL(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	cert := &ssh.Certificate{Key: ca.PublicKey(), Serial: 123_456, SignatureKey: ca.PublicKey(), KeyId: "agent-7"}
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			_ = k.Revoked(cert)
		}
	})
}
