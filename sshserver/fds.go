package sshserver

import (
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/audit"
)

// fdReserve is how many file descriptors the listener leaves free for
// what the server does for connections it already has (worker pipes, the
// policy and key files it reloads): at least minFDReserve, and one
// sixteenth of the limit.
func fdReserve(limit int) int { return max(minFDReserve, limit/16) }

const minFDReserve = 64

// fdGuard is the server's listener: it closes, as soon as they are
// accepted, new connections that would leave fewer than fdReserve file
// descriptors under the process's RLIMIT_NOFILE, so that the connections
// already open can still start workers, and the server says why instead
// of failing to accept at all (a listener out of descriptors leaves every
// new client hanging in the backlog). The count of descriptors in use is
// read from /proc/self/fd: at least once a second, and at every accept
// once it is within a quarter of the threshold; in between, each accepted
// connection adds one. Without /proc the guard lets everything through.
// Refusals are audited (rate-limited per source) and warned about in the
// server log at most once per fdWarnEvery. Accept is called by one
// goroutine (the server's accept loop); mu guards the rest.
type fdGuard struct {
	net.Listener
	s *Server

	mu         sync.Mutex
	limit      int // soft RLIMIT_NOFILE, as last read
	measured   int // descriptors in use, as last read
	since      int // connections accepted since
	measuredAt time.Time
	lastWarn   time.Time
	refused    int // since the last warning
}

// fdWarnEvery is how often the server log may say that connections are
// being refused for want of descriptors.
const fdWarnEvery = 10 * time.Second

func (s *Server) guardFDs(l net.Listener) net.Listener {
	if _, err := openFDs(); err != nil {
		s.cfg.Log.WithError(err).Warn("keyhole: cannot count open file descriptors; new connections are not refused before the limit")
		return l
	}
	return &fdGuard{Listener: l, s: s}
}

func (g *fdGuard) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		inUse, limit, ok := g.room()
		if ok {
			return c, nil
		}
		_ = c.Close()
		g.refuse(c.RemoteAddr(), inUse, limit)
	}
}

// room reports whether one more connection leaves the reserve free, with
// the descriptors in use and the limit it judged by.
func (g *fdGuard) room() (inUse, limit int, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	est := g.measured + g.since
	threshold := g.limit - fdReserve(g.limit)
	if g.limit == 0 || now.Sub(g.measuredAt) >= time.Second || est >= threshold-threshold/4 {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 1<<31 {
			g.limit = int(rl.Cur)
		}
		if n, err := openFDs(); err == nil {
			g.measured, g.since, g.measuredAt = n, 0, now
			est = n
		}
		threshold = g.limit - fdReserve(g.limit)
	}
	if est >= threshold {
		return est, g.limit, false
	}
	g.since++
	return est, g.limit, true
}

// refuse audits the refusal of a connection from src and, at most once
// per fdWarnEvery, warns in the server log.
func (g *fdGuard) refuse(src net.Addr, inUse, limit int) {
	g.s.refuseConn(src, audit.Event{Reason: "server is short of file descriptors"})
	g.mu.Lock()
	g.refused++
	now := time.Now()
	if now.Sub(g.lastWarn) < fdWarnEvery {
		g.mu.Unlock()
		return
	}
	n := g.refused
	g.refused, g.lastWarn = 0, now
	g.mu.Unlock()
	g.s.cfg.Log.WithFields(map[string]any{
		"in_use": inUse, "limit": limit, "reserve": fdReserve(limit), "refused": n,
	}).Warn("keyhole: refusing new connections: too few file descriptors left (raise RLIMIT_NOFILE or lower max_connections)")
}

// openFDs counts the process's open file descriptors.
func openFDs() (int, error) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, err
	}
	return len(names) - 1, nil // less the one reading them
}
