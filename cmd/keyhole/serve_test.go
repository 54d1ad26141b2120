package main

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

// TestKnownHostsLine checks the line serve prints against OpenSSH's form:
// brackets and the port only when the port is not 22.
func TestKnownHostsLine(t *testing.T) {
	t.Parallel()
	_, priv, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := gossh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub)))
	hostname, _ := os.Hostname()
	for _, tt := range []struct{ name, addr, want string }{
		{"loopback-port", "127.0.0.1:2222", "[127.0.0.1]:2222 " + key},
		{"port-22", "127.0.0.1:22", "127.0.0.1 " + key},
		{"ipv6-port", "[::1]:2222", "[::1]:2222 " + key},
		{"ipv6-port-22", "[::1]:22", "::1 " + key},
		{"every-address", "0.0.0.0:2222", "[" + hostname + "]:2222 " + key},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := knownHostsLine(tt.addr, pub); got != tt.want {
				t.Errorf("knownHostsLine(%q) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func TestVersionLine(t *testing.T) {
	t.Parallel()
	built := &debug.BuildInfo{
		GoVersion: "go1.23.4",
		Main:      debug.Module{Path: "github.com/keyhole-dev/keyhole", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-11-27T02:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tt := range []struct {
		name, version string
		info          *debug.BuildInfo
		want          string
	}{
		{"module-and-vcs", "dev", built,
			"keyhole v0.3.0 (github.com/keyhole-dev/keyhole, revision 0123456789abcdef0123456789abcdef01234567, 2026-11-27T02:00:00Z, modified, go1.23.4)"},
		{"ldflags-version", "v1.0.0", built,
			"keyhole v1.0.0 (github.com/keyhole-dev/keyhole, revision 0123456789abcdef0123456789abcdef01234567, 2026-11-27T02:00:00Z, modified, go1.23.4)"},
		{"no-vcs", "dev", &debug.BuildInfo{GoVersion: "go1.23.4", Main: debug.Module{Path: "github.com/keyhole-dev/keyhole", Version: "(devel)"}},
			"keyhole (devel) (github.com/keyhole-dev/keyhole, revision unknown, go1.23.4)"},
		{"no-build-info", "dev", nil, "keyhole (devel) (github.com/keyhole-dev/keyhole, revision unknown)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionLine(tt.version, tt.info); got != tt.want {
				t.Errorf("versionLine = %q, want %q", got, tt.want)
			}
		})
	}
}
