package worker

// The worker's end of the server ↔ worker protocol (internal/workerproto):
// one script, received over a pipe, run under its limits, with every
// decision put in the decision ring (or sent, without one) and every print
// call sent back as it happens.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/outcome"
	"github.com/keyhole-dev/keyhole/starlarkrt"
)

// Serve runs the scripts Start messages on in describe, one after the
// other, and writes each one's Audit and Print messages and its Result to
// out. It returns once the input ends between scripts (nil) or the
// exchange failed (an error; the server then decides the script's end
// from the worker's exit).
//
// The policy is rebuilt from the Start message's files with
// authz.LoadFiles and must have the version the server named; a pooled
// worker may have been sent that version's files before, in a Preload
// message or a previous Start, and then uses the set it loaded. While a
// script runs only Confirm and CatDone messages may come; end of input, or
// anything else, cancels the script, as the end of a session does, and ends the
// worker once its Result is written. Each audit event is written to out
// before the operation it records acts, and one whose operation changes
// the host waits for its Confirm; when it cannot be written or is not
// confirmed, the operation does not happen.
//
// Serve has no decision ring: every decision goes to out as a
// message. Main puts them in the ring the server passes instead.
// Serve changes nothing process-wide; Main also applies the
// memory and stack limits to the process.
func Serve(in io.Reader, out io.Writer) error {
	return serve(in, out, nil, nil, nil, nil)
}

// serve is Serve with the worker's decision ring (nil: none), its
// descriptor socket (nil: none; fs.cat then sends the file's bytes as
// Print messages), a hook that applies the Start message's limits to the process before each
// script runs, and one that cleans up after each script (Main: the
// orphans of its programs, hostops.Sweep) before its Result is written.
// When after fails, the Result is still written and serve returns its
// error, so the worker ends rather than run another script.
func serve(in io.Reader, out io.Writer, ring *workerproto.Ring, fds *os.File, apply func(workerproto.Limits) error, after func() error) error {
	r := workerproto.NewReader(in, 0)
	w := workerproto.NewWriter(out)
	typ, p, err := r.Next()
	var pre *authz.PolicySet // the last policy set loaded (preload.go)
	if err == nil && typ == workerproto.TypePreload {
		if pre, err = preload(p); err != nil {
			return fmt.Errorf("worker: preload: %w", err)
		}
		typ, p, err = r.Next()
	}
	if err != nil {
		return fmt.Errorf("worker: read start: %w", err)
	}
	if typ != workerproto.TypeStart {
		return fmt.Errorf("worker: first message is %s, want start", typ)
	}
	in2 := newInbox(r)
	for {
		var st workerproto.Start
		if err := workerproto.Decode(typ, p, &st); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		t0 := time.Now()
		ctx, confirmed, catDone := in2.begin()
		ap := &auditPipe{w: w, ring: ring, ctx: ctx, confirmed: confirmed}
		cat := &catPipe{w: w, fds: fds, ctx: ctx, done: catDone}
		res, policy := run(ctx, &st, pre, printPipe{w, ap, cat}, t0, apply)
		if policy != nil {
			pre = policy
		}
		in2.end()
		var afterErr error
		if after != nil {
			afterErr = after()
		}
		if err := w.WriteJSON(workerproto.TypeResult, res); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		if afterErr != nil {
			return afterErr
		}
		var ok bool
		if p, ok = in2.next(); !ok {
			return nil
		}
		typ = workerproto.TypeStart
	}
}

// inbox reads the worker's stdin after the first Start message, for the
// worker's whole life. While a script runs, each Confirm goes to it (one
// per AuditSync or Sync), and each CatDone (one per Cat); anything else, or the end of input, cancels the
// script. Between scripts the next Start is kept for serve; anything
// else, or the end of input, ends the worker. Its fields are guarded by
// mu.
type inbox struct {
	mu        sync.Mutex
	cancel    context.CancelFunc // the running script's, or nil between scripts
	confirmed chan struct{}      // the running script's Confirms
	catDone   chan workerproto.CatDone
	starts    chan []byte // Start payloads; closed when input ends
	broken    bool        // input ended or broke the protocol
}

func newInbox(r *workerproto.Reader) *inbox {
	b := &inbox{starts: make(chan []byte, 1)}
	go b.read(r)
	return b
}

func (b *inbox) read(r *workerproto.Reader) {
	defer func() {
		b.mu.Lock()
		b.broken = true
		if b.cancel != nil {
			b.cancel()
		}
		b.mu.Unlock()
		close(b.starts)
	}()
	for {
		typ, p, err := r.Next()
		if err != nil {
			return
		}
		b.mu.Lock()
		running := b.cancel != nil
		confirmed, catDone := b.confirmed, b.catDone
		b.mu.Unlock()
		switch {
		case running && typ == workerproto.TypeCatDone:
			var d workerproto.CatDone
			if workerproto.Decode(typ, p, &d) != nil {
				return
			}
			select {
			case catDone <- d:
			default:
				return // a second CatDone for one Cat
			}
		case running && typ == workerproto.TypeConfirm && len(p) == 0:
			select {
			case confirmed <- struct{}{}:
			default:
				return // a second Confirm for one AuditSync or Sync
			}
		case !running && typ == workerproto.TypeStart:
			// serve takes it before it starts the script, so a second
			// Start cannot come before this one is taken: the server
			// sends one only after the Result of the script before.
			select {
			case b.starts <- p:
			default:
				return
			}
		default:
			return
		}
	}
}

// begin returns the context and the Confirm and CatDone channels of the
// script about to run; the context is already cancelled when input has
// ended.
func (b *inbox) begin() (context.Context, chan struct{}, chan workerproto.CatDone) {
	ctx, cancel := context.WithCancel(context.Background())
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cancel, b.confirmed, b.catDone = cancel, make(chan struct{}, 1), make(chan workerproto.CatDone, 1)
	if b.broken {
		cancel()
	}
	return ctx, b.confirmed, b.catDone
}

// end marks the script done: a Confirm from now on breaks the protocol.
func (b *inbox) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cancel()
	b.cancel, b.confirmed, b.catDone = nil, nil, nil
}

// next waits for the next Start message's payload; false when input ended.
func (b *inbox) next() ([]byte, bool) {
	p, ok := <-b.starts
	return p, ok
}

// run runs st's script and returns its Result message and the policy set
// it ran with (nil if none loaded). pre is the policy set loaded last, or
// nil.
func run(ctx context.Context, st *workerproto.Start, pre *authz.PolicySet, pp printPipe, t0 time.Time, apply func(workerproto.Limits) error) (*workerproto.Result, *authz.PolicySet) {
	fail := func(kind, msg string) *workerproto.Result {
		return &workerproto.Result{Exit: outcome.ExitFor(kind), Error: &outcome.Error{Kind: kind, Message: msg}}
	}
	policy, err := policySnapshot(st, pre)
	if err != nil {
		return fail(outcome.KindInternal, err.Error()), nil
	}
	args, err := decodeArgs(st.Args)
	if err != nil {
		return fail(hostops.KindInvalidArgument, err.Error()), policy
	}
	if apply != nil {
		if err := apply(st.Limits); err != nil {
			return fail(outcome.KindInternal, fmt.Sprintf("worker: apply limits: %v", err)), policy
		}
	}
	base := st.Context.Now
	if base.IsZero() {
		base = t0
	}
	clock := func() time.Time { return base.Add(time.Since(t0)) }
	counters := &hostops.Counters{MaxRead: st.Limits.MaxRead, MaxWrite: st.Limits.MaxWrite,
		MaxOperations: st.Limits.MaxOperations}
	host := &hostops.Host{
		Policy:         policy,
		Principal:      st.Principal,
		Context:        st.Context,
		Audit:          pp.ap,
		Clock:          clock,
		MaxExecOutput:  st.Limits.MaxExecOutput,
		ServiceManager: st.ServiceManager,
		Counters:       counters,
		DryRun:         st.DryRun,
	}
	filename := st.Filename
	if filename == "" {
		filename = "script"
	}
	res := starlarkrt.Run(ctx, filename, st.Script, starlarkrt.Options{
		Host:      host,
		Stdout:    pp,
		Files:     pp,
		MaxSteps:  st.Limits.MaxSteps,
		MaxWall:   st.Limits.MaxWall,
		MaxOutput: st.Limits.MaxOutput,
		Args:      args,
		Counters:  counters,
	})
	out := &workerproto.Result{
		Exit:         res.Exit,
		Steps:        res.Steps,
		Duration:     res.Duration,
		BytesRead:    counters.Read(),
		BytesWritten: counters.Written(),
	}
	out.Error = res.Err // outcome.Error, the type the protocol carries
	if res.Value != nil {
		v, err := json.Marshal(res.Value)
		if err != nil {
			out.Exit = outcome.ExitScriptError
			out.Error = &outcome.Error{Kind: outcome.KindScriptError, Message: fmt.Sprintf("result: value cannot be encoded as JSON: %v", err)}
		} else {
			out.Value = v
		}
	}
	return out, policy
}

// decodeArgs decodes the request's arguments, a JSON object or nothing;
// numbers keep their text (json.Number) so integers stay exact.
func decodeArgs(raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var args map[string]any
	if err := dec.Decode(&args); err != nil {
		return nil, fmt.Errorf("args: must be a JSON object: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("args: data after the object")
	}
	return args, nil
}

// auditPipe sends each audit event to the server.
//
// With a ring (a worker the server started), a decision's record is put
// in the ring, without a system call; the server takes the records out
// before it handles any message the worker writes after them, and when
// the worker's output ends. A decision whose operation changes the host
// (hostops.Acts) is followed by a Sync message, and Log returns only once
// the server has confirmed that every line up to it is written; a full
// ring is emptied the same way, and the record put again. A decision the
// ring cannot carry (a record over workerproto.MaxRecord, or more
// policies than workerproto.MaxDecisionPolicies) goes as an AuditSync
// message, confirmed before the script goes on, so that no later record
// can overtake it.
//
// Without a ring, a decision whose operation changes the host is sent as
// AuditSync, and Log returns once the server has confirmed its line;
// others are sent as Audit, and the server, which handles messages in
// order, forwards nothing after a line it could not write.
//
// An event that cannot be recorded or is not confirmed is an error:
// hostops logs before it acts, so the operation does not happen and the
// script ends INTERNAL.
type auditPipe struct {
	w    *workerproto.Writer
	ring *workerproto.Ring // producer end, or nil
	ctx  context.Context   // ends when stdin ends: no Confirm can come
	// confirmed gets one value per Confirm message; mu keeps one
	// AuditSync or Sync outstanding at a time, so a Confirm answers the
	// one sent, and makes Log the ring's one producer.
	confirmed chan struct{}
	mu        sync.Mutex
	rec       []byte // the record being put, under mu
}

func (a *auditPipe) Log(e audit.Event) error {
	if a.ring == nil {
		if !hostops.Acts(e) {
			return a.logMessage(e, false)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.logMessage(e, true)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.Event == audit.Decision && (e.Decision == "allow" || e.Decision == "deny") &&
		len(e.Policies) <= workerproto.MaxDecisionPolicies {
		a.rec = workerproto.AppendDecision(a.rec[:0], &workerproto.Decision{Action: e.Action, Resource: e.Resource,
			Allow: e.Decision == "allow", Policies: e.Policies, Reason: e.Reason, Argv: e.Argv})
		if len(a.rec) <= workerproto.MaxRecord {
			return a.putRecord(hostops.Acts(e))
		}
	}
	return a.logMessage(e, true)
}

// putMark puts a print mark (an empty record) in the ring.
func (a *auditPipe) putMark() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rec = a.rec[:0]
	return a.putRecord(false)
}

// putRecord puts a.rec in the ring and, when sync is set, waits until
// the server has written its line. a.mu is held.
func (a *auditPipe) putRecord(sync bool) error {
	err := a.ring.Put(a.rec)
	if errors.Is(err, workerproto.ErrRingFull) {
		// The server empties the ring before it answers a Sync.
		if err = a.sync(workerproto.TypeSync, nil); err == nil {
			err = a.ring.Put(a.rec)
		}
	}
	if err != nil {
		return fmt.Errorf("worker: audit: %w", err)
	}
	if sync {
		return a.sync(workerproto.TypeSync, nil)
	}
	return nil
}

// logMessage sends e as an Audit message, or as an AuditSync message and
// waits for its Confirm (a.mu held).
func (a *auditPipe) logMessage(e audit.Event, sync bool) error {
	// The bytes WriteJSON would send, without reflection: one event per
	// host operation.
	p, err := e.AppendJSON(make([]byte, 0, 512))
	if err != nil {
		return fmt.Errorf("worker: audit event: %w", err)
	}
	if !sync {
		return a.w.WriteRaw(workerproto.TypeAudit, p)
	}
	return a.sync(workerproto.TypeAuditSync, p)
}

// sync sends a message of type t and waits for its Confirm. a.mu is held.
func (a *auditPipe) sync(t workerproto.Type, p []byte) error {
	if err := a.w.WriteRaw(t, p); err != nil {
		return err
	}
	select {
	case <-a.confirmed:
		return nil
	case <-a.ctx.Done():
		select {
		case <-a.confirmed: // confirmed just before the end of input
			return nil
		default:
		}
		return errors.New("worker: audit line not confirmed by the server")
	}
}

// printPipe sends each write (Run writes one per print call) to the
// server. With a ring, it first puts a print mark there (an empty
// record): the server takes the decisions put before the mark before it
// forwards the print, and none put after it.
type printPipe struct {
	w   *workerproto.Writer
	ap  *auditPipe
	cat *catPipe
}

func (p printPipe) Write(b []byte) (int, error) {
	if p.ap.ring != nil {
		if err := p.ap.putMark(); err != nil {
			return 0, err
		}
	}
	if err := p.w.WriteRaw(workerproto.TypePrint, b); err != nil {
		return 0, err
	}
	return len(b), nil
}
