package sshserver

import (
	"errors"
	"net"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
)

// DefaultMaxAuthTries is the default cap on failed authentication attempts
// per connection, as OpenSSH's MaxAuthTries.
const DefaultMaxAuthTries = 6

// maxAuthTries returns the configured cap, or the default.
func (l Limits) maxAuthTries() int {
	if l.MaxAuthTries <= 0 {
		return DefaultMaxAuthTries
	}
	return l.MaxAuthTries
}

// errTooManyTries refuses every key after the cap; the key is not checked
// and no further audit line is written.
var errTooManyTries = errors.New("permission denied")

// limitedPublicKey wraps publicKey for one connection: once MaxAuthTries
// keys have been refused, every further key is refused unchecked, as
// OpenSSH counts failed public key queries too (x/crypto lets a client
// query several keys for free before it counts). x/crypto then disconnects
// the client at its own count. The callback runs on the connection's
// handshake goroutine only, so refusedKeys needs no lock.
func (s *Server) limitedPublicKey() func(gossh.ConnMetadata, gossh.PublicKey) (*gossh.Permissions, error) {
	max := s.cfg.Limits.maxAuthTries()
	refusedKeys := 0
	return func(conn gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
		if refusedKeys >= max {
			return nil, errTooManyTries
		}
		perms, err := s.publicKey(conn, key)
		if err != nil {
			refusedKeys++
		}
		return perms, err
	}
}

// connectionFailed is gliderlabs' ConnectionFailedCallback: a handshake
// that x/crypto ended because the client used up its authentication
// attempts gets its own audit line (each refused key already has one).
func (s *Server) connectionFailed(c net.Conn, err error) {
	var authErr *gossh.ServerAuthError
	if !errors.As(err, &authErr) {
		return
	}
	for _, e := range authErr.Errors {
		if strings.Contains(e.Error(), "too many authentication failures") {
			s.refuseConn(c.RemoteAddr(), audit.Event{Reason: "too many authentication attempts"})
			return
		}
	}
}
