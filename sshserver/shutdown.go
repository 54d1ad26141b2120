package sshserver

// Shutdown: stop accepting, let running sessions end within a grace, then
// end the rest, each with its last audit line written.

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/outcome"
	"github.com/keyhole-dev/keyhole/worker"
)

// MsgShuttingDown is the message of the INTERNAL error that ends a script
// the server stops on Shutdown (exit status outcome.ExitInternal), the
// reason of its session.end line, and what a session opened during
// Shutdown is refused with.
const MsgShuttingDown = "server shutting down"

// errShuttingDown is the cause of the context of a session that Shutdown
// ends.
var errShuttingDown = errors.New("sshserver: " + MsgShuttingDown)

// shutdownKillWait bounds how long Shutdown waits for the sessions it has
// ended to write their last lines before it closes every connection
// (which ends any session still reading from its client). A worker told
// to stop is killed after worker's cancel grace (2s) in any case.
const shutdownKillWait = 10 * time.Second

// activeSessions is the set of sessions that have a slot, from before
// their session.start line until after their session.end line. Once
// draining, no session joins it. Safe for concurrent use; mu guards all.
type activeSessions struct {
	mu       sync.Mutex
	draining bool
	cancel   map[*int]context.CancelCauseFunc // keyed by a token per session
	empty    chan struct{}                    // closed once draining and cancel is empty
}

// join registers a session and returns its context (ended by Shutdown
// with errShuttingDown as its cause) and the function that removes it. ok
// is false once the server is shutting down.
func (a *activeSessions) join(ctx context.Context) (context.Context, func(), bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.draining {
		return nil, nil, false
	}
	if a.cancel == nil {
		a.cancel = map[*int]context.CancelCauseFunc{}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	tok := new(int)
	a.cancel[tok] = cancel
	return ctx, func() {
		cancel(nil)
		a.mu.Lock()
		delete(a.cancel, tok)
		if a.draining && len(a.cancel) == 0 {
			close(a.empty)
		}
		a.mu.Unlock()
	}, true
}

// drain stops new sessions from joining and returns how many are running
// and a channel closed once none is.
func (a *activeSessions) drain() (int, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.draining {
		a.draining = true
		a.empty = make(chan struct{})
		if len(a.cancel) == 0 {
			close(a.empty)
		}
	}
	return len(a.cancel), a.empty
}

// endAll ends every running session's context with errShuttingDown and
// returns how many there were.
func (a *activeSessions) endAll() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, cancel := range a.cancel {
		cancel(errShuttingDown)
	}
	return len(a.cancel)
}

// ShutdownStats says what Shutdown did.
type ShutdownStats struct {
	Running int // sessions running when Shutdown began
	Ended   int // sessions still running when ctx ended, ended by the server
}

// Shutdown stops the server gracefully. It closes the listeners at once
// (new connections are refused by the kernel) and refuses new sessions on
// open connections (audited, and the client told MsgShuttingDown). Running
// sessions go on until they end or ctx ends; then each one left is ended:
// its script is stopped and ends with INTERNAL: MsgShuttingDown (exit
// status 125), its session.end line giving that reason. Shutdown returns
// once every session's last audit line is written and every connection is
// closed (it calls Close). Cancelling ctx while Shutdown waits ends the
// sessions at once.
func (s *Server) Shutdown(ctx context.Context) (ShutdownStats, error) {
	// Sessions are refused before the listeners close: once a new
	// connection is refused, so is a new session.
	var st ShutdownStats
	var empty <-chan struct{}
	st.Running, empty = s.active.drain()
	s.lnMu.Lock()
	s.closed = true // Serve returns nil when its listener is closed
	for l := range s.listeners {
		_ = l.Close()
	}
	s.lnMu.Unlock()
	select {
	case <-empty:
	case <-ctx.Done():
		st.Ended = s.active.endAll()
		t := time.NewTimer(shutdownKillWait)
		select {
		case <-empty:
		case <-t.C:
			s.cfg.Log.Warn("sessions still running after they were ended; closing their connections")
		}
		t.Stop()
	}
	// The listeners are closed already: closing them again is no error.
	if err := s.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return st, err
	}
	return st, nil
}

// refuseShuttingDown refuses a session channel opened while the server
// shuts down.
func (s *Server) refuseShuttingDown(cs *connState, conn *gossh.ServerConn, nc gossh.NewChannel) {
	if s.countRefusal(cs, conn, "channel session") {
		s.auditConn(conn, audit.Event{Event: audit.RequestRefused, Request: "channel session", Reason: MsgShuttingDown})
	}
	_ = nc.Reject(gossh.ResourceShortage, "keyhole: "+MsgShuttingDown)
}

// shuttingDown reports whether ctx, a session's context, was ended by
// Shutdown.
func shuttingDown(ctx context.Context) bool {
	return ctx != nil && errors.Is(context.Cause(ctx), errShuttingDown)
}

// shutdownEnd is end, the end of a script run with ctx, said the way a
// client should read it when Shutdown stopped the script (the run was
// cancelled): the worker only knows its session ended, and a script
// stopped in the middle of an operation may end with that operation's
// error (a program killed with its process group is LIMIT_EXCEEDED). A
// script that ended ok keeps its end.
func shutdownEnd(ctx context.Context, end *worker.End) *worker.End {
	if !shuttingDown(ctx) || !end.Cancelled || end.Err == nil {
		return end
	}
	e := *end
	e.Exit = outcome.ExitInternal
	e.Err = &outcome.Error{Kind: outcome.KindInternal, Message: MsgShuttingDown}
	return &e
}
