package sshserver

import (
	"net"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/keys"
)

type fakeMeta struct{ user string }

func (f fakeMeta) User() string          { return f.user }
func (f fakeMeta) SessionID() []byte     { return []byte("sid") }
func (f fakeMeta) ClientVersion() []byte { return []byte("SSH-2.0-test") }
func (f fakeMeta) ServerVersion() []byte { return []byte("SSH-2.0-keyhole") }
func (f fakeMeta) RemoteAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (f fakeMeta) LocalAddr() net.Addr   { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }

type nopPolicy struct{}

func (nopPolicy) Current() *authz.PolicySet { return nil }

// TestPermissionsArePerKey guards the gliderlabs pitfall: its context's
// Permissions are shared by every key a client offers. keyhole's callback
// must return fresh Permissions per key, so the identity that reaches the
// session (ServerConn.Permissions, which x/crypto takes from the callback
// of the key that authenticated) cannot be one a client merely offered.
func TestPermissionsArePerKey(t *testing.T) {
	ca, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cas, err := keys.ParseTrustedCAs(gossh.MarshalAuthorizedKey(ca.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	cert := func(id string) *gossh.Certificate {
		k, _, err := keys.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		c, err := keys.SignUserCert(ca, keys.CertRequest{Key: k.PublicKey(), KeyID: id, Principals: []string{"logs"}, Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	host, _, _ := keys.GenerateKey()
	s, err := New(Config{HostSigners: []gossh.Signer{host}, Auth: &keys.CertRules{CAs: cas}, Policy: nopPolicy{}, Audit: audit.Discard})
	if err != nil {
		t.Fatal(err)
	}
	victim, err := s.publicKey(fakeMeta{"logs"}, cert("victim"))
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := s.publicKey(fakeMeta{"logs"}, cert("attacker"))
	if err != nil {
		t.Fatal(err)
	}
	if victim == attacker {
		t.Fatal("two keys share one Permissions value")
	}
	conn := func(p *gossh.Permissions) *gossh.ServerConn { return &gossh.ServerConn{Permissions: p} }
	if id, ok := identityOf(conn(victim)); !ok || id.UserID != "victim" {
		t.Errorf("victim's permissions carry %+v", id)
	}
	if id, ok := identityOf(conn(attacker)); !ok || id.UserID != "attacker" {
		t.Errorf("attacker's permissions carry %+v", id)
	}
	if _, err := s.publicKey(fakeMeta{"root"}, cert("x")); err == nil {
		t.Error("login outside the principals accepted")
	}
	if _, ok := identityOf(conn(&gossh.Permissions{})); ok {
		t.Error("empty permissions yield an identity")
	}
}
