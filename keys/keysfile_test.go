package keys_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

func authLine(opts string, key ssh.PublicKey, comment string) string {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	if opts != "" {
		line = opts + " " + line
	}
	if comment != "" {
		line += " " + comment
	}
	return line + "\n"
}

func TestKeysFileCheck(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	alice, bob, carol, dave, erin := mustSigner(t).PublicKey(), mustSigner(t).PublicKey(),
		mustSigner(t).PublicKey(), mustSigner(t).PublicKey(), mustSigner(t).PublicKey()
	unlisted := mustSigner(t).PublicKey()
	data := "# keyhole keys file\n\n" +
		authLine(`principals="logs,deploy"`, alice, "alice") +
		authLine(`principals="logs",from="192.0.2.0/24,!192.0.2.66"`, bob, "bob ops team") +
		authLine(`principals="logs",expiry-time="20260601115959Z"`, carol, "carol") +
		authLine(`restrict,principals="logs",expiry-time="20260601120001Z",from="198.51.100.*"`, dave, "dave") +
		// Two lines for one key: the second allows another source.
		authLine(`principals="deploy",from="10.0.0.1"`, erin, "erin-a") +
		authLine(`principals="deploy",from="192.0.2.10"`, erin, "erin-b")
	kf, err := keys.ParseKeysFile([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if kf.Len() != 6 {
		t.Errorf("Len = %d, want 6", kf.Len())
	}
	src := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }
	tests := []struct {
		name   string
		key    ssh.PublicKey
		login  string
		source string
		want   error
		user   string
	}{
		{"listed-key", alice, "deploy", "192.0.2.10", nil, "alice"},
		{"login-not-in-principals", alice, "root", "192.0.2.10", keys.ErrPrincipalNotAllowed, ""},
		{"unlisted-key", unlisted, "logs", "192.0.2.10", keys.ErrKeyNotListed, ""},
		{"from-cidr-match", bob, "logs", "192.0.2.10", nil, "bob ops team"},
		{"from-negated", bob, "logs", "192.0.2.66", keys.ErrSourceAddress, ""},
		{"from-outside", bob, "logs", "203.0.113.9", keys.ErrSourceAddress, ""},
		{"from-ipv4-mapped-ipv6", bob, "logs", "::ffff:192.0.2.10", nil, "bob ops team"},
		{"expired", carol, "logs", "192.0.2.10", keys.ErrKeyExpired, ""},
		{"not-yet-expired-wildcard-from", dave, "logs", "198.51.100.7", nil, "dave"},
		{"wildcard-from-mismatch", dave, "logs", "198.51.101.7", keys.ErrSourceAddress, ""},
		{"second-line-allows", erin, "deploy", "192.0.2.10", nil, "erin-b"},
		{"no-line-allows", erin, "deploy", "192.0.2.11", keys.ErrSourceAddress, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := kf.Check(tc.key, tc.login, src(tc.source), now)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.UserID != tc.user || id.Role != tc.login || id.Auth != "key" || id.Serial != 0 ||
				id.Fingerprint != ssh.FingerprintSHA256(tc.key) {
				t.Errorf("identity = %+v", id)
			}
		})
	}
}

func TestKeysFileRefusedAtLoad(t *testing.T) {
	t.Parallel()
	k := mustSigner(t).PublicKey()
	ca := mustSigner(t)
	cert, err := keys.SignUserCert(ca, keys.CertRequest{Key: k, KeyID: "x", Principals: []string{"logs"}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	good := authLine(`principals="logs"`, k, "ok")
	tests := []struct{ name, line, want string }{
		{"command-option", authLine(`command="/bin/sh",principals="logs"`, k, "x"), `unknown option "command"`},
		{"environment-option", authLine(`environment="A=B",principals="logs"`, k, "x"), `unknown option "environment"`},
		{"cert-authority", authLine(`cert-authority,principals="logs"`, k, "x"), `unknown option "cert-authority"`},
		{"no-principals", authLine("", k, "x"), "missing principals"},
		{"empty-principal", authLine(`principals="logs,"`, k, "x"), "empty principal"},
		{"no-comment", authLine(`principals="logs"`, k, ""), "missing comment"},
		{"bad-from", authLine(`principals="logs",from="10.0.0.0/99"`, k, "x"), "bad address block"},
		{"bad-expiry", authLine(`principals="logs",expiry-time="tomorrow"`, k, "x"), "expiry-time"},
		{"unquoted-value", authLine(`principals=logs`, k, "x"), "double quotes"},
		{"duplicate-option", authLine(`principals="a",principals="b"`, k, "x"), "given twice"},
		{"certificate", authLine(`principals="logs"`, cert, "x"), "certificate cannot be listed"},
		{"garbage", "ssh-ed25519 AAAA!!!! x\n", ""},
		{"control-character-in-user-id", authLine(`principals="logs"`, k, "evil\x1b[2Jbot"), "control character"},
		{"control-character-in-principal", authLine("principals=\"lo\x07gs\"", k, "x"), "control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keys.ParseKeysFile([]byte(good + tc.line))
			if err == nil {
				t.Fatal("parsed")
			}
			if !strings.HasPrefix(err.Error(), "2: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want line 2 and %q", err, tc.want)
			}
		})
	}
	// The file name and line reach the error of LoadKeysFile.
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte(good+tests[0].line), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.LoadKeysFile(p); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s:2: ", p)) {
		t.Errorf("err = %v, want %s:2", err, p)
	}
}
