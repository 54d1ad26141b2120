package sshserver

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// idleKey is the gliderlabs context key of a connection's idleConn.
type idleKey struct{}

// idleConn closes a connection that has been idle for Limits.IdleTimeout:
// nothing read from or written to it, and no script running on it, for
// that long. A script that computes silently is not idle (max_wall bounds
// it); a session that has not sent its script yet is. gliderlabs' own
// IdleTimeout counts only traffic, so it would cut a silent script short.
type idleConn struct {
	net.Conn
	timeout time.Duration
	last    atomic.Int64 // UnixNano of the last read or write

	mu      sync.Mutex // guards running, timer and closed
	running int        // scripts running on the connection
	timer   *time.Timer
	closed  bool
}

func newIdleConn(c net.Conn, timeout time.Duration) *idleConn {
	ic := &idleConn{Conn: c, timeout: timeout}
	ic.touch()
	ic.mu.Lock()
	ic.timer = time.AfterFunc(timeout, ic.check)
	ic.mu.Unlock()
	return ic
}

func (ic *idleConn) touch() { ic.last.Store(time.Now().UnixNano()) }

func (ic *idleConn) Read(b []byte) (int, error) {
	n, err := ic.Conn.Read(b)
	ic.touch()
	return n, err
}

func (ic *idleConn) Write(b []byte) (int, error) {
	ic.touch()
	return ic.Conn.Write(b)
}

// check runs when the timer fires: it closes the connection if it has
// been idle long enough, and otherwise sets the timer for when it would
// have been.
func (ic *idleConn) check() {
	ic.mu.Lock()
	if ic.closed {
		ic.mu.Unlock()
		return
	}
	if ic.running > 0 {
		ic.timer.Reset(ic.timeout)
		ic.mu.Unlock()
		return
	}
	if idle := time.Since(time.Unix(0, ic.last.Load())); idle < ic.timeout {
		ic.timer.Reset(ic.timeout - idle)
		ic.mu.Unlock()
		return
	}
	ic.closed = true
	ic.mu.Unlock()
	_ = ic.Conn.Close()
}

// busy marks a script running on the connection until the returned
// function is called.
func (ic *idleConn) busy() (done func()) {
	ic.mu.Lock()
	ic.running++
	ic.mu.Unlock()
	return sync.OnceFunc(func() {
		ic.mu.Lock()
		ic.running--
		ic.mu.Unlock()
		ic.touch() // idle from the end of the script on
	})
}

func (ic *idleConn) Close() error {
	ic.mu.Lock()
	ic.closed = true
	ic.timer.Stop()
	ic.mu.Unlock()
	return ic.Conn.Close()
}

// scriptRunning marks a script running on the session's connection (so
// the idle timeout spares it) until the returned function is called.
func (ss *session) scriptRunning() (done func()) {
	if ss.idle == nil {
		return func() {}
	}
	return ss.idle.busy()
}
