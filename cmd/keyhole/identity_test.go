package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeReloadsIdentityOnSIGHUP checks that SIGHUP reloads keys_file and
// revoked_keys without stopping the server, and that a KRL broken while the
// server runs is reported loudly (every key is then refused; keys'
// TestAuthenticatorReload checks the refusals).
func TestServeReloadsIdentityOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"ca.pub":             gossh.MarshalAuthorizedKey(ca.PublicKey()),
		"revoked.krl":        keys.NewKRL().Marshal(),
		"keys":               []byte("# no plain keys yet\n"),
		"policies/one.cedar": []byte("@id(\"nothing\")\nforbid (principal, action, resource);\n"),
		"keyhole.toml": []byte(`listen = "127.0.0.1:0"
host_key = "host_key"
trusted_user_ca_keys = "ca.pub"
keys_file = "keys"
revoked_keys = "revoked.krl"
policy_dir = "policies"
audit_log = "audit.log"
`),
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &lockedBuffer{}
	exited := make(chan int, 1)
	addr := filepath.Join(dir, "addr")
	go func() {
		exited <- run(ctx, []string{"serve", "--config", filepath.Join(dir, "keyhole.toml"), "--addr-file", addr}, io.Discard, stderr)
	}()
	defer func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: stderr:\n%s", what, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("server did not start", func() bool { b, _ := os.ReadFile(addr); return len(b) > 0 })

	// The files did not change, so only SIGHUP can cause this reload.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("no reload after SIGHUP", func() bool { return strings.Contains(stderr.String(), "keys: reloaded") })

	if err := os.WriteFile(filepath.Join(dir, "revoked.krl"), []byte("not a KRL"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("no loud line for a corrupt KRL", func() bool {
		s := stderr.String()
		return strings.Contains(s, "level=error") && strings.Contains(s, "revocation list unusable")
	})
	select {
	case code := <-exited:
		exited <- code
		t.Fatalf("server stopped after SIGHUP (exit %d)", code)
	default:
	}
}
