package sshserver

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// graceKey is the gliderlabs context key of a connection's graceConn.
type graceKey struct{}

// graceConn closes a connection that has not authenticated within the
// login grace time. gliderlabs resets socket deadlines on every read, so the
// limit is kept by a timer of its own. onDone runs exactly once, when the
// connection authenticates, closes or runs out of time (it releases the
// connection's unauthenticated slot).
type graceConn struct {
	net.Conn
	onDone func()
	mu     sync.Mutex
	timer  *time.Timer
	done   bool
}

func newGraceConn(c net.Conn, grace time.Duration, onExpire, onDone func()) *graceConn {
	g := &graceConn{Conn: c, onDone: onDone}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.timer = time.AfterFunc(grace, func() {
		g.mu.Lock()
		expired := !g.done
		g.done = true
		g.mu.Unlock()
		if expired {
			g.onDone()
			onExpire()
			_ = c.Close()
		}
	})
	return g
}

// authenticated stops the grace timer.
func (g *graceConn) authenticated() {
	g.mu.Lock()
	first := !g.done
	if first {
		g.done = true
		g.timer.Stop()
	}
	g.mu.Unlock()
	if first {
		g.onDone()
	}
}

func (g *graceConn) Close() error {
	g.authenticated()
	return g.Conn.Close()
}

// quickAckConn sets TCP_QUICKACK before every read, so the small
// back-to-back packets of clients that do not set TCP_NODELAY are not held
// for the delayed-ACK timer (Linux clears the flag as it goes).
func quickAckConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAck{Conn: c, raw: raw}
}

type quickAck struct {
	net.Conn
	raw syscall.RawConn
}

func (q *quickAck) Read(b []byte) (int, error) {
	_ = q.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpQuickAck, 1)
	})
	return q.Conn.Read(b)
}

// tcpQuickAck is TCP_QUICKACK on Linux.
const tcpQuickAck = 0xc
