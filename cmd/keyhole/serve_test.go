package main

import (
	"os"
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
