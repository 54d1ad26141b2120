package keys_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

func mustSigner(t *testing.T) ssh.Signer {
	t.Helper()
	s, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCertRules(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ca := mustSigner(t)
	otherCA := mustSigner(t)
	user := mustSigner(t)
	cas, err := keys.ParseTrustedCAs(ssh.MarshalAuthorizedKey(ca.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	rules := &keys.CertRules{CAs: cas, Clock: func() time.Time { return now }}
	src := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 5555}

	sign := func(by ssh.Signer, mod func(*ssh.Certificate)) *ssh.Certificate {
		c := &ssh.Certificate{
			Key: user.PublicKey(), Serial: 42, CertType: ssh.UserCert, KeyId: "agent-7",
			ValidPrincipals: []string{"logs", "deploy"},
			ValidAfter:      uint64(now.Add(-time.Hour).Unix()),
			ValidBefore:     uint64(now.Add(time.Hour).Unix()),
		}
		if mod != nil {
			mod(c)
		}
		if err := c.SignCert(rand.Reader, by); err != nil {
			t.Fatal(err)
		}
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaCA, err := ssh.NewSignerFromKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	sha1CA, err := ssh.NewSignerWithAlgorithms(rsaCA.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSA})
	if err != nil {
		t.Fatal(err)
	}
	rsaCAs, err := keys.ParseTrustedCAs(ssh.MarshalAuthorizedKey(rsaCA.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	tampered := sign(ca, nil)
	tampered.ValidPrincipals = []string{"root"}

	tests := []struct {
		name  string
		key   ssh.PublicKey
		login string
		rules *keys.CertRules
		want  error
	}{
		{"valid", sign(ca, nil), "logs", rules, nil},
		{"valid-second-principal", sign(ca, nil), "deploy", rules, nil},
		{"plain-key", user.PublicKey(), "logs", rules, keys.ErrNotCertificate},
		{"host-cert", sign(ca, func(c *ssh.Certificate) { c.CertType = ssh.HostCert }), "logs", rules, keys.ErrHostCertificate},
		{"unknown-ca", sign(otherCA, nil), "logs", rules, keys.ErrUnknownCA},
		{"login-not-principal", sign(ca, nil), "root", rules, keys.ErrPrincipalNotAllowed},
		// A certificate without principals cannot be made here (x/crypto refuses
		// to sign one); the end-to-end tests make it with ssh-keygen.
		{"empty-key-id", sign(ca, func(c *ssh.Certificate) { c.KeyId = "" }), "logs", rules, keys.ErrNoKeyID},
		{"expired", sign(ca, func(c *ssh.Certificate) { c.ValidBefore = uint64(now.Unix()) }), "logs", rules, keys.ErrCertExpired},
		{"not-yet-valid", sign(ca, func(c *ssh.Certificate) { c.ValidAfter = uint64(now.Unix() + 1) }), "logs", rules, keys.ErrCertNotYetValid},
		{"forever", sign(ca, func(c *ssh.Certificate) { c.ValidAfter = 0; c.ValidBefore = ssh.CertTimeInfinity }), "logs", rules, nil},
		{"force-command", sign(ca, func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"force-command": "/bin/sh"}
		}), "logs", rules, keys.ErrCriticalOption},
		{"verify-required", sign(ca, func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"verify-required": ""}
		}), "logs", rules, keys.ErrCriticalOption},
		{"source-address-match", sign(ca, func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"source-address": "10.0.0.1,192.0.2.0/24"}
		}), "logs", rules, nil},
		{"source-address-mismatch", sign(ca, func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"source-address": "198.51.100.0/24"}
		}), "logs", rules, keys.ErrSourceAddress},
		{"source-address-malformed", sign(ca, func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"source-address": "not-an-address"}
		}), "logs", rules, keys.ErrSourceAddress},
		{"sha1-ca-signature", sign(sha1CA, nil), "logs", &keys.CertRules{CAs: rsaCAs, Clock: rules.Clock}, keys.ErrSHA1Signature},
		{"sha2-rsa-ca-signature", sign(rsaCA, nil), "logs", &keys.CertRules{CAs: rsaCAs, Clock: rules.Clock}, nil},
		{"tampered-after-signing", tampered, "root", rules, keys.ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.rules.Check(tc.key, tc.login, src)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.UserID != "agent-7" || id.Role != tc.login || id.Serial != 42 || id.Auth != "certificate" ||
					id.Fingerprint != ssh.FingerprintSHA256(user.PublicKey()) {
					t.Errorf("identity = %+v", id)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseTrustedCAs(t *testing.T) {
	t.Parallel()
	ca := mustSigner(t)
	good := "# comment\n\n" + string(ssh.MarshalAuthorizedKey(ca.PublicKey()))
	if _, err := keys.ParseTrustedCAs([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"empty":         "",
		"garbage":       "ssh-ed25519 AAAA!!!\n",
		"only-comments": "# nothing\n",
	} {
		if _, err := keys.ParseTrustedCAs([]byte(bad)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
