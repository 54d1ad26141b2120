package keys_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type authFixture struct {
	dir, keysPath, krlPath string
	ca                     ssh.Signer
	cert                   *ssh.Certificate
	plain                  ssh.PublicKey
	log                    *syncBuffer
	auth                   *keys.Authenticator
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	f := &authFixture{dir: t.TempDir(), ca: mustSigner(t), plain: mustSigner(t).PublicKey(), log: &syncBuffer{}}
	f.keysPath = filepath.Join(f.dir, "keys")
	f.krlPath = filepath.Join(f.dir, "krl")
	var err error
	f.cert, err = keys.SignUserCert(f.ca, keys.CertRequest{
		Key: mustSigner(t).PublicKey(), KeyID: "agent-7", Principals: []string{"logs"}, Serial: 9, Validity: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.writeFile(t, f.keysPath, []byte(authLine(`principals="logs"`, f.plain, "bot-1")))
	f.writeFile(t, f.krlPath, keys.NewKRL().Marshal())
	cas, err := keys.ParseTrustedCAs(ssh.MarshalAuthorizedKey(f.ca.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	l := logrus.New()
	l.SetOutput(f.log)
	f.auth, err = keys.NewAuthenticator(keys.AuthConfig{CAs: cas, KeysFile: f.keysPath, RevokedKeys: f.krlPath, Log: l})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// writeFile replaces path atomically, as an operator's tools should.
func (f *authFixture) writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

func (f *authFixture) accepts(key ssh.PublicKey) error {
	_, err := f.auth.Check(key, "logs", loopback)
	return err
}

func TestAuthenticatorReload(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	if err := f.accepts(f.cert); err != nil {
		t.Fatalf("certificate: %v", err)
	}
	id, err := f.auth.Check(f.plain, "logs", loopback)
	if err != nil || id.UserID != "bot-1" || id.Auth != "key" {
		t.Fatalf("plain key: %+v, %v", id, err)
	}

	// Revoking the serial and the plain key takes effect on Reload.
	k := keys.NewKRL()
	if err := k.RevokeSerials(f.ca.PublicKey(), 9, 9); err != nil {
		t.Fatal(err)
	}
	k.RevokeKey(f.plain)
	f.writeFile(t, f.krlPath, k.Marshal())
	if err := f.accepts(f.cert); err != nil {
		t.Fatalf("revoked before reload: %v", err)
	}
	if err := f.auth.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := f.accepts(f.cert); !errors.Is(err, keys.ErrRevoked) || !strings.Contains(err.Error(), "serial 9") {
		t.Errorf("certificate after revocation: %v", err)
	}
	if err := f.accepts(f.plain); !errors.Is(err, keys.ErrRevoked) {
		t.Errorf("plain key after revocation: %v", err)
	}

	// A corrupt KRL refuses everyone, loudly, until it is fixed.
	f.writeFile(t, f.krlPath, []byte("SSHKRL\n\x00garbage"))
	if err := f.auth.Reload(); err == nil {
		t.Error("reload of a corrupt KRL reported no error")
	}
	other, err := keys.SignUserCert(f.ca, keys.CertRequest{Key: mustSigner(t).PublicKey(), KeyID: "agent-8", Principals: []string{"logs"}, Serial: 10, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.accepts(other); !errors.Is(err, keys.ErrRevocationUnusable) {
		t.Errorf("unrevoked certificate with a corrupt KRL: %v", err)
	}
	if !strings.Contains(f.log.String(), "level=error") || !strings.Contains(f.log.String(), "every key is refused") {
		t.Errorf("no loud log line: %s", f.log.String())
	}
	// A vanished KRL too.
	if err := os.Remove(f.krlPath); err != nil {
		t.Fatal(err)
	}
	_ = f.auth.Reload()
	if err := f.accepts(other); !errors.Is(err, keys.ErrRevocationUnusable) {
		t.Errorf("missing KRL: %v", err)
	}
	f.writeFile(t, f.krlPath, keys.NewKRL().Marshal())
	if err := f.auth.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := f.accepts(other); err != nil {
		t.Errorf("after the KRL is fixed: %v", err)
	}

	// A broken keys file refuses plain keys only.
	f.writeFile(t, f.keysPath, []byte(`command="/bin/sh" `+authLine(`principals="logs"`, f.plain, "bot-1")))
	_ = f.auth.Reload()
	if err := f.accepts(f.plain); !errors.Is(err, keys.ErrKeysFileStale) {
		t.Errorf("plain key with a broken keys file: %v", err)
	}
	if err := f.accepts(other); err != nil {
		t.Errorf("certificate with a broken keys file: %v", err)
	}
}

func TestAuthenticatorWatch(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done, err := f.auth.Watch(ctx, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-done }()

	k := keys.NewKRL()
	if err := k.RevokeKeyID(nil, "agent-7"); err != nil {
		t.Fatal(err)
	}
	f.writeFile(t, f.krlPath, k.Marshal())
	deadline := time.Now().Add(10 * time.Second)
	for f.accepts(f.cert) == nil {
		if time.Now().After(deadline) {
			t.Fatal("KRL change not picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := f.accepts(f.cert); !errors.Is(err, keys.ErrRevoked) {
		t.Errorf("err = %v", err)
	}
	// Removing the plain key from the keys file is picked up too.
	f.writeFile(t, f.keysPath, []byte("# empty\n"))
	for f.accepts(f.plain) == nil {
		if time.Now().After(deadline) {
			t.Fatal("keys file change not picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := f.accepts(f.plain); !errors.Is(err, keys.ErrKeyNotListed) {
		t.Errorf("err = %v", err)
	}
}

func TestNewAuthenticatorRefusesBrokenFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not a krl"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.NewAuthenticator(keys.AuthConfig{RevokedKeys: bad}); err == nil || !strings.Contains(err.Error(), "malformed revocation list") {
		t.Errorf("corrupt KRL: %v", err)
	}
	if _, err := keys.NewAuthenticator(keys.AuthConfig{RevokedKeys: filepath.Join(dir, "absent")}); err == nil {
		t.Error("missing KRL accepted")
	}
	if _, err := keys.NewAuthenticator(keys.AuthConfig{KeysFile: bad}); err == nil || !strings.Contains(err.Error(), bad+":1:") {
		t.Errorf("bad keys file: %v", err)
	}
	// No keys file: plain keys are refused, with a reason.
	a, err := keys.NewAuthenticator(keys.AuthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(mustSigner(t).PublicKey(), "logs", loopback); !errors.Is(err, keys.ErrNotCertificate) {
		t.Errorf("plain key without keys file: %v", err)
	}
}
