package sshserver

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/keys"
)

// MaxRefusedRequests is how many requests (channels, global and session
// requests) one connection may have refused. The one past it is not
// audited on its own: one line says the cap was reached, and the
// connection is closed, so that a logged-in client cannot fill the audit
// log with refusals.
const MaxRefusedRequests = 16

// connKey is the gliderlabs context key of a connection's connState.
type connKey struct{}

// connState is what the server keeps about one connection, from accept to
// close: its refused requests and, once authenticated, its slot among the
// authenticated connections (Limits.MaxConnections). It wraps the
// connection so that closing it, by anyone, gives the slot back. Safe for
// concurrent use; mu guards release and closed.
type connState struct {
	net.Conn
	refused atomic.Int32

	mu      sync.Mutex
	release func() // the authenticated connection's slot; nil before
	closed  bool
}

func connStateOf(ctx gliderssh.Context) *connState {
	cs, _ := ctx.Value(connKey{}).(*connState)
	return cs
}

// hold keeps release, the connection's slot, until the connection closes;
// a connection already closed gives it back at once.
func (cs *connState) hold(release func()) {
	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		release()
		return
	}
	old := cs.release
	cs.release = release
	cs.mu.Unlock()
	if old != nil {
		old()
	}
}

func (cs *connState) Close() error {
	cs.mu.Lock()
	release := cs.release
	cs.release, cs.closed = nil, true
	cs.mu.Unlock()
	if release != nil {
		release()
	}
	return cs.Conn.Close()
}

// countRefusal counts one refused request on the connection. It reports
// whether the refusal gets its own audit line: past MaxRefusedRequests it
// does not; the first past it writes the line that says so and closes the
// connection.
func (s *Server) countRefusal(cs *connState, conn *gossh.ServerConn, request string) bool {
	if cs == nil {
		return true
	}
	n := cs.refused.Add(1)
	if n <= MaxRefusedRequests {
		return true
	}
	if n == MaxRefusedRequests+1 {
		s.auditConn(conn, audit.Event{Event: audit.RequestRefused, Request: request,
			Reason: "too many refused requests (limit " + strconv.Itoa(MaxRefusedRequests) + "); connection closed"})
		if conn != nil {
			_ = conn.Close()
		}
	}
	return false
}

// holdConnection takes the slot of a connection whose key has just been
// verified, for the user id of that key (perms are the ones publicKey
// returned for it), and keeps it until the connection closes. Past
// Limits.MaxConnections or MaxConnectionsPerUser the authentication fails:
// the client is told why in a banner, and the refusal is audited.
func (s *Server) holdConnection(cs *connState, conn gossh.ConnMetadata, perms *gossh.Permissions) (*gossh.Permissions, error) {
	var id *keys.Identity
	if perms != nil {
		id, _ = perms.ExtraData[identityKey{}].(*keys.Identity)
	}
	if id == nil {
		return nil, errors.New("sshserver: verified key without an identity")
	}
	release, reason := s.conns.acquire(id.UserID)
	if release == nil {
		s.refuseConn(conn.RemoteAddr(), audit.Event{User: id.UserID, Role: id.Role, Fingerprint: id.Fingerprint, Reason: reason})
		return nil, &gossh.BannerError{Err: errors.New(reason), Message: "keyhole: " + reason + "\n"}
	}
	cs.hold(release)
	return perms, nil
}
