package sshserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/outcome"
	"github.com/keyhole-dev/keyhole/starlarkrt"
	"github.com/keyhole-dev/keyhole/worker"
)

// session is one "session" channel. Its fields are owned by the goroutine
// reading the channel's requests until a script starts; after that, only
// by the script's goroutine.
type session struct {
	s      *Server
	conn   *gossh.ServerConn
	ch     gossh.Channel
	id     *keys.Identity
	sid    string
	policy *authz.PolicySet
	pty    bool
	idle   *idleConn // the connection's idle timer; nil without IdleTimeout
	cs     *connState
	ctx    context.Context // ended by the connection's end or by Shutdown

	mu   sync.Mutex  // guards base: the request loop and the script both log
	base audit.Event // identity fields of every audit line of the session

	// release frees the session's slot; ended is set once the session.end
	// line has been written (by finish, before the client is told the exit
	// status, so that a client that has its exit status finds the line).
	release func()
	ended   bool
}

func (s *Server) handleSession(_ *gliderssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx gliderssh.Context) {
	id, ok := identityOf(conn)
	if !ok {
		_ = nc.Reject(gossh.Prohibited, "keyhole: not authenticated")
		return
	}
	if err := s.auditReady(); err != nil {
		s.cfg.Log.WithError(err).WithField("user", id.UserID).Warn("session refused: audit log unwritable")
		s.observeSessionRefused(reasonAuditUnwritable)
		_ = nc.Reject(gossh.ResourceShortage, "keyhole: "+msgAuditSessionRefused)
		return
	}
	sctx, leave, ok := s.active.join(ctx) // shutdown.go
	if !ok {
		s.refuseShuttingDown(connStateOf(ctx), conn, nc)
		return
	}
	defer leave() // after the session.end line
	policy := s.cfg.Policy.Current()
	cs := connStateOf(ctx)
	if policy == nil {
		if s.countRefusal(cs, conn, "channel session") {
			s.auditConn(conn, audit.Event{Event: audit.RequestRefused, Request: "channel session", Reason: "no policy loaded"})
		}
		s.observeSessionRefused("no policy loaded")
		_ = nc.Reject(gossh.ResourceShortage, "keyhole: no policy loaded")
		return
	}
	release, reason := s.open.acquire(id.UserID)
	if release == nil {
		if s.countRefusal(cs, conn, "channel session") {
			s.auditConn(conn, audit.Event{Event: audit.RequestRefused, Request: "channel session", Reason: reason})
		}
		s.observeSessionRefused(reason)
		_ = nc.Reject(gossh.ResourceShortage, "keyhole: "+reason)
		return
	}
	defer release() // also when the channel is never accepted
	s.sessions.Add(1)
	defer s.sessions.Done()
	ss := &session{
		s:      s,
		conn:   conn,
		id:     id,
		sid:    newSessionID(),
		policy: policy,
		ctx:    sctx,
	}
	ss.idle, _ = ctx.Value(idleKey{}).(*idleConn)
	ss.cs = cs
	ss.base = audit.Event{
		Session:       ss.sid,
		User:          id.UserID,
		Role:          id.Role,
		Source:        hostOf(conn.RemoteAddr()),
		Fingerprint:   id.Fingerprint,
		PolicyVersion: ss.policy.Version(),
	}
	// The session.start line comes before the channel is accepted: a
	// session that cannot be recorded is refused with the reason.
	if err := ss.log(audit.Event{Event: audit.SessionStart}); err != nil {
		s.cfg.Log.WithError(err).WithField("session", ss.sid).Warn("session refused: audit log unwritable")
		s.observeSessionRefused(reasonAuditUnwritable)
		_ = nc.Reject(gossh.ResourceShortage, "keyhole: "+msgAuditSessionRefused)
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		_ = ss.log(audit.Event{Event: audit.SessionEnd, Reason: "channel not accepted"})
		return
	}
	ss.ch = ch
	ss.release = release
	ss.observeOpened()
	if exit := ss.serve(sctx, reqs); !ss.ended {
		ss.end(exit)
	}
}

// end frees the session's slot and writes its session.end line, with the
// script's exit status when one ran (exit >= 0). The slot is free first:
// whoever reads the session.end line may open the next session.
func (ss *session) end(exit int) {
	e := audit.Event{Event: audit.SessionEnd}
	if exit >= 0 {
		e.Exit = audit.Int(exit)
	}
	if shuttingDown(ss.ctx) && exit != outcome.ExitOK {
		e.Reason = MsgShuttingDown
	}
	ss.release()
	ss.ended = true
	_ = ss.log(e) // the session is over: nothing is left to stop
	ss.observeEnded(exit)
}

// msgAuditSessionRefused is what a client is told when its session cannot
// start because the audit log cannot be written.
const msgAuditSessionRefused = "audit log unwritable, session refused"

// log writes one line of the session with its identity fields. An error
// means the line is not in the audit log: what it records must not happen.
func (ss *session) log(e audit.Event) error {
	ss.mu.Lock()
	b := ss.base
	ss.mu.Unlock()
	b.Time = ss.s.cfg.Clock()
	b.Event = e.Event
	b.Request = e.Request
	b.Reason = e.Reason
	b.Exit = e.Exit
	b.Transport = e.Transport
	b.ScriptSHA256 = e.ScriptSHA256
	return ss.s.cfg.Audit.Log(b)
}

// serve answers the channel's requests until a script has run or the
// channel closes. It returns the script's exit status, or -1 if none ran.
// A channel that has asked for neither exec nor a subsystem within the
// login grace time is closed (and audited), so that an idle channel does
// not hold a session slot.
func (ss *session) serve(ctx context.Context, reqs <-chan *gossh.Request) int {
	defer ss.ch.Close()
	// Requests that come after the end are refused unanswered-for, so that
	// a client that keeps sending them cannot stall the connection.
	defer func() { go gossh.DiscardRequests(reqs) }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan int, 1)
	started := false
	grace := time.NewTimer(ss.s.cfg.Limits.LoginGrace)
	defer grace.Stop()
	for {
		// Until a script starts, the end of ctx (Shutdown) ends the
		// session; after, it stops the script, which then ends it.
		var ended <-chan struct{}
		if !started {
			ended = ctx.Done()
		}
		select {
		case <-ended:
			return -1
		case <-grace.C:
			if !started {
				ss.log(audit.Event{Event: audit.RequestRefused, Request: "channel session",
					Reason: fmt.Sprintf("no exec or subsystem request within %s", ss.s.cfg.Limits.LoginGrace)})
				return -1
			}
		case req, ok := <-reqs:
			if !ok {
				// The client closed the channel: stop the script, if any.
				cancel()
				if started {
					return <-done
				}
				return -1
			}
			if req.Type == "keepalive@openssh.com" {
				_ = req.Reply(false, nil) // liveness probe, not a request for anything
				continue
			}
			if req.Type == "window-change" && ss.pty {
				_ = req.Reply(true, nil) // part of the acknowledged pty, also while a script runs
				continue
			}
			if started {
				ss.refuse(req, "a script is already running in this session")
				continue
			}
			switch req.Type {
			case "pty-req":
				if ss.pty {
					ss.refuse(req, "terminal already acknowledged")
					continue
				}
				if err := ss.log(audit.Event{Event: audit.RequestGranted, Request: req.Type, Reason: "acknowledged without a terminal"}); err != nil {
					_ = req.Reply(false, nil) // not granted when it cannot be recorded
					continue
				}
				ss.pty = true
				_ = req.Reply(true, nil)
			case "window-change":
				if ss.pty {
					_ = req.Reply(true, nil) // part of the acknowledged pty
				} else {
					ss.refuse(req, "no terminal")
				}
			case "exec":
				var p struct{ Command string }
				if err := gossh.Unmarshal(req.Payload, &p); err != nil {
					ss.refuse(req, "malformed exec request")
					continue
				}
				if legacySCP(p.Command) {
					ss.refuseSCP(req, p.Command)
					return ss.finish(outcome.ExitScriptError, nil)
				}
				_ = req.Reply(true, nil)
				started = true
				go func() { done <- ss.runScript(ctx, p.Command) }()
			case "subsystem":
				var p struct{ Name string }
				if err := gossh.Unmarshal(req.Payload, &p); err != nil {
					ss.refuse(req, "malformed subsystem request")
					continue
				}
				if p.Name == "sftp" {
					_ = req.Reply(true, nil)
					started = true
					go func() { done <- ss.runSftp(ctx) }()
					continue
				}
				if p.Name != "starlark" && p.Name != "keyhole" {
					ss.tell(fmt.Sprintf("no subsystem %q here", p.Name))
					ss.refuse(req, fmt.Sprintf("subsystem %q not available", p.Name))
					continue
				}
				_ = req.Reply(true, nil)
				started = true
				run := ss.runStdin
				if p.Name == "keyhole" {
					run = ss.runStructured // JSON request line, JSON lines out
				}
				go func() { done <- run(ctx) }()
			case "shell":
				ss.tell("no shell here")
				ss.refuse(req, "request type not allowed")
			default:
				ss.refuse(req, "request type not allowed")
			}
		case exit := <-done:
			return exit
		}
	}
}

func (ss *session) refuse(req *gossh.Request, reason string) {
	if ss.s.countRefusal(ss.cs, ss.conn, req.Type) {
		ss.log(audit.Event{Event: audit.RequestRefused, Request: req.Type, Reason: reason})
	}
	if req.WantReply {
		_ = req.Reply(false, nil)
	}
}

// tellWait bounds how long tell waits for the client to answer.
const tellWait = 5 * time.Second

// tell writes one line to the client's stderr saying what keyhole accepts
// instead of what it is about to refuse, so a person who typed "ssh host"
// learns what to send. The stock client exits as soon as a shell or
// subsystem is refused, dropping stderr data it has received but not yet
// written out; it answers channel requests in order and writes buffered
// stderr before it reads its next packets. So tell waits (at most
// tellWait) for the answer to a keepalive request sent after the line,
// and the refusal that follows comes after the line is out.
// The goroutine tell starts ends when the channel closes, at the latest.
func (ss *session) tell(what string) {
	line := "keyhole: " + what + "; send a Starlark script: ssh user@host 'print(1)', or use subsystem starlark or keyhole\n"
	if ss.pty {
		line = string(crlf([]byte(line)))
	}
	// The write waits for window space, so a client that grants none
	// cannot hold the request loop either: both steps run under the
	// timer, and closing the channel ends them.
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if _, err := io.WriteString(ss.ch.Stderr(), line); err != nil {
			return
		}
		_, _ = ss.ch.SendRequest("keepalive@openssh.com", true, nil)
	}()
	t := time.NewTimer(tellWait)
	defer t.Stop()
	select {
	case <-answered:
	case <-t.C:
	}
}

// runStdin reads a script from the channel until EOF and runs it.
func (ss *session) runStdin(ctx context.Context) int {
	max := ss.s.cfg.Limits.MaxScript
	var src []byte
	var err error
	if !ss.receive(func() { src, err = io.ReadAll(io.LimitReader(ss.ch, max+1)) }) {
		exit, kind, msg := ss.notReceived()
		ss.log(audit.Event{Event: audit.RequestRefused, Request: "subsystem starlark", Reason: msg})
		return ss.finish(exit, &outcome.Error{Kind: kind, Message: msg})
	}
	if err != nil {
		return ss.finish(outcome.ExitInternal, &outcome.Error{Kind: outcome.KindInternal, Message: "reading script: " + err.Error()})
	}
	if int64(len(src)) > max {
		return ss.finish(outcome.ExitLimitExceeded, &outcome.Error{Kind: outcome.KindLimitExceeded, Message: fmt.Sprintf("script larger than %d bytes", max)})
	}
	return ss.runScript(ctx, string(src))
}

// beginScript puts src's hash and the transport on the session's audit
// lines and returns the hash and the template of the script's decision
// events; tooBig says why src is refused as too large ("" when it is
// not).
func (ss *session) beginScript(src string) (sum string, event audit.Event, tooBig string) {
	sum = starlarkrt.ScriptSHA256(src)
	ss.mu.Lock()
	ss.base.ScriptSHA256 = sum
	ss.base.Transport = "script"
	event = ss.base
	ss.mu.Unlock()
	if int64(len(src)) > ss.s.cfg.Limits.MaxScript {
		tooBig = fmt.Sprintf("script larger than %d bytes", ss.s.cfg.Limits.MaxScript)
	}
	return sum, event, tooBig
}

// runScript runs src and reports its end to the client.
func (ss *session) runScript(ctx context.Context, src string) int {
	sum, event, tooBig := ss.beginScript(src)
	if tooBig != "" {
		return ss.finish(outcome.ExitLimitExceeded, &outcome.Error{Kind: outcome.KindLimitExceeded, Message: tooBig})
	}
	var out io.Writer = ss.ch
	if ss.pty {
		out = &crlfWriter{w: ss.ch}
	}
	end := ss.runWorker(ctx, ss.startMessage(src, sum, nil, event.Transport), event, worker.RunOptions{
		Print: func(p []byte) error { _, err := out.Write(p); return err },
		Cat:   func(r io.Reader, _ string) (int64, error) { return copyFile(out, r) },
	})
	return ss.finish(end.Exit, end.Err)
}

// finish writes the error line, ends the session (its session.end line),
// then sends the exit status and closes the channel: every audit line of
// the session is written before the client learns how it ended.
func (ss *session) finish(exit int, err *outcome.Error) int {
	if err != nil {
		line := err.Kind + ": " + err.Message + "\n"
		if ss.pty {
			line = string(crlf([]byte(line)))
		}
		_, _ = io.WriteString(ss.ch.Stderr(), line)
	}
	ss.observeFinish(err)
	ss.end(exit)
	_, _ = ss.ch.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{uint32(exit)}))
	_ = ss.ch.CloseWrite()
	return exit
}

// crlfWriter turns "\n" into "\r\n", as a terminal would.
type crlfWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.w.Write(crlf(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func crlf(p []byte) []byte { return bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n")) }

// receive runs read, which reads the script from the channel, and reports
// whether it returned within the login grace time. A client that opens a
// subsystem and never sends its script would otherwise hold a session slot
// forever; when receive gives up, the session ends and closing the channel
// ends the read. Shutdown ending the session makes it give up at once.
func (ss *session) receive(read func()) bool {
	done := make(chan struct{})
	go func() {
		read()
		close(done)
	}()
	t := time.NewTimer(ss.s.cfg.Limits.LoginGrace)
	defer t.Stop()
	var ended <-chan struct{}
	if ss.ctx != nil {
		ended = ss.ctx.Done()
	}
	for {
		select {
		case <-done:
			return true
		case <-t.C:
			return false
		case <-ended:
			if shuttingDown(ss.ctx) {
				return false
			}
			ended = nil // the connection closed: the read ends with it
		}
	}
}

// notReceived is how a session whose script receive gave up on ends.
func (ss *session) notReceived() (exit int, kind, msg string) {
	if shuttingDown(ss.ctx) {
		return outcome.ExitInternal, outcome.KindInternal, MsgShuttingDown
	}
	return outcome.ExitLimitExceeded, outcome.KindLimitExceeded,
		fmt.Sprintf("script not received within %s", ss.s.cfg.Limits.LoginGrace)
}
