package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

// addrport FILE VAR sets the environment variable VAR to the port of the
// host:port address in FILE (as written by serve --addr-file), so a script
// can hand it to the stock ssh client's -p.
func cmdAddrPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: addrport FILE VAR")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	_, port, err := net.SplitHostPort(strings.TrimSpace(string(b)))
	ts.Check(err)
	ts.Setenv(args[1], port)
}

// TestCASignValidity guards against a certificate whose span is counted
// from its backdated start: --validity 30s then issued one already
// expired, and 8h one that ended a minute early.
func TestCASignValidity(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		validity string
		want     time.Duration
	}{
		{"thirty-seconds", "30s", 30 * time.Second},
		{"eight-hours", "8h", 8 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var out, errOut strings.Builder
			if code := run(context.Background(), []string{"ca", "init", filepath.Join(dir, "ca")}, &out, &errOut); code != 0 {
				t.Fatalf("ca init: %d %s", code, errOut.String())
			}
			_, priv, err := keys.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			pub, err := gossh.NewPublicKey(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "id.pub"), gossh.MarshalAuthorizedKey(pub), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			code := run(context.Background(), []string{"ca", "sign", "--ca", filepath.Join(dir, "ca", "ca"),
				"--key", filepath.Join(dir, "id.pub"), "--id", "agent-7", "--principals", "logs", "--validity", tt.validity}, &out, &errOut)
			end := time.Now()
			if code != 0 {
				t.Fatalf("ca sign: %d %s", code, errOut.String())
			}
			k, err := readPublicKey(filepath.Join(dir, "id-cert.pub"))
			if err != nil {
				t.Fatal(err)
			}
			cert := k.(*gossh.Certificate)
			before := time.Unix(int64(cert.ValidBefore), 0)
			// Certificate times are whole seconds.
			lo, hi := start.Add(tt.want).Truncate(time.Second), end.Add(tt.want)
			if before.Before(lo) || before.After(hi) {
				t.Errorf("valid before %s, want now + %s (between %s and %s)", before, tt.want, lo, hi)
			}
			after := time.Unix(int64(cert.ValidAfter), 0)
			if after.After(start) || start.Sub(after) > 2*time.Minute {
				t.Errorf("valid after %s, want at or a little before %s", after, start)
			}
			if !before.After(end) {
				t.Errorf("the certificate is expired at issue: valid before %s", before)
			}
		})
	}
}
