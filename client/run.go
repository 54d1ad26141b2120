package client

// Running a script through the structured subsystem "keyhole"
// (DESIGN.md, "Wire protocols"): one JSON request line out; print and
// decision events and one end line in.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/outcome"
)

// Client is one connection to a keyhole host. Run may be called any
// number of times, concurrently: each script gets its own session on the
// same connection.
type Client struct {
	target    Target
	ssh       *ssh.Client
	jumps     []*ssh.Client // outermost first
	dialer    *Dialer       // owned, when made by Dial
	maxOutput int64
}

// Close closes the connection, the jump hosts' connections and, for a
// Client made by Dial, its Dialer.
func (c *Client) Close() error {
	err := c.ssh.Close()
	for i := len(c.jumps) - 1; i >= 0; i-- {
		c.jumps[i].Close()
	}
	if c.dialer != nil {
		c.dialer.Close()
	}
	return err
}

// Target is the host this client is connected to.
func (c *Client) Target() Target { return c.target }

// Decision is one authorized operation of a script.
type Decision struct {
	Action   string   `json:"action"`
	Resource string   `json:"resource"`
	Allow    bool     `json:"allow"`
	Policies []string `json:"policies"`
}

// Stats are a script's counters, from the end line.
type Stats struct {
	Steps        uint64 `json:"steps"`
	DurationMS   int64  `json:"duration_ms"`
	BytesRead    int64  `json:"bytes_read"`
	BytesWritten int64  `json:"bytes_written"`
	Allowed      int    `json:"allowed"`
	Denied       int    `json:"denied"`
	// DryRun: the server ran the script as a dry run (RunOptions.DryRun).
	DryRun bool `json:"dry_run,omitempty"`
}

// Result is how a script ended, as the server reported it.
type Result struct {
	Exit   int             `json:"exit"`   // 0, 1, 2, 13, 124 or 125 (outcome.Exit*)
	Result json.RawMessage `json:"result"` // the value given to result(), or null
	Error  *outcome.Error  `json:"error"`  // set when Exit is not 0
	Stats  Stats           `json:"stats"`
	// Output holds the script's print calls, one element each, without
	// the newline.
	Output []string `json:"output"`
	// Decisions lists every authorized operation, allowed or denied.
	Decisions []Decision `json:"decisions"`
}

// Denied returns the decisions that denied an operation.
func (r *Result) Denied() []Decision {
	var out []Decision
	for _, d := range r.Decisions {
		if !d.Allow {
			out = append(out, d)
		}
	}
	return out
}

// RunOptions stream a script's events as they arrive and bound its time.
type RunOptions struct {
	Args map[string]any // the script's args; nil means none
	// Print and Decision, when set, are called for each event as it
	// arrives, from the goroutine that called Run.
	Print    func(string)
	Decision func(Decision)
	// Timeout bounds the script's run, from the session's start to its
	// end line; 0 means only ctx bounds it.
	Timeout time.Duration
	// DryRun asks the server for a dry run: every operation is authorized
	// and audited (marked dry_run) as in a real run, reads return their
	// data, and no write, program or service action is performed; the
	// script sees host.dry_run. Result.Stats.DryRun says the server did.
	DryRun bool
}

// ProtocolError is a server's answer that breaks the structured
// protocol: no end line, an end line that contradicts the exit status,
// or more output than Config.MaxOutput.
type ProtocolError struct {
	Host string
	Msg  string
}

func (e *ProtocolError) Error() string { return fmt.Sprintf("%s: protocol: %s", e.Host, e.Msg) }

// Run runs script with args on the host and returns its result. A
// script that ends with an error is a Result with Exit not 0, not an
// error: Run's error says the script's end was not learned (the
// connection failed, the server broke the protocol, ctx ended). When ctx
// ends, the session is closed and the server ends the script.
func (c *Client) Run(ctx context.Context, script string, args map[string]any) (*Result, error) {
	return c.RunWith(ctx, script, RunOptions{Args: args})
}

// request is the request line.
type request struct {
	Script string         `json:"script"`
	Args   map[string]any `json:"args"`
	DryRun bool           `json:"dry_run,omitempty"`
}

// event is any line the server sends.
type event struct {
	Print    *string         `json:"print"`
	Decision *Decision       `json:"decision"`
	Exit     *int            `json:"exit"`
	Result   json.RawMessage `json:"result"`
	Error    *outcome.Error  `json:"error"`
	Stats    Stats           `json:"stats"`
}

// RunWith is Run with options.
func (c *Client) RunWith(ctx context.Context, script string, opts RunOptions) (*Result, error) {
	host := c.target.String()
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	args := opts.Args
	if args == nil {
		args = map[string]any{}
	}
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(request{Script: script, Args: args, DryRun: opts.DryRun}); err != nil {
		return nil, fmt.Errorf("client: %s: encode request: %w", host, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxError(ctx, host)
	}
	// A server that answers nothing (frozen, or a hostile one) would
	// leave the calls below waiting: once ctx has ended, the connection
	// is closed after closeGrace if Run has not returned by then.
	var returned atomic.Bool
	defer returned.Store(true)
	stopGrace := context.AfterFunc(ctx, func() {
		time.AfterFunc(closeGrace, func() {
			if !returned.Load() {
				c.ssh.Close()
			}
		})
	})
	defer stopGrace()
	// A raw session channel: x/crypto's Session does not count a
	// subsystem as started, so its Wait would never report the exit status.
	ch, reqs, err := c.ssh.OpenChannel("session", nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx, host)
		}
		return nil, fmt.Errorf("client: %s: open session: %w", host, err)
	}
	// Closing the session on ctx's end makes the server end the script.
	var closeOnce sync.Once
	closeSess := func() { closeOnce.Do(func() { ch.Close() }) }
	defer closeSess()
	stop := context.AfterFunc(ctx, closeSess)
	defer stop()

	// The exit status, from the channel's requests until it closes.
	status := make(chan *int, 1)
	go func() {
		var st *int
		for r := range reqs {
			if r.Type == "exit-status" && len(r.Payload) >= 4 {
				v := int(binary.BigEndian.Uint32(r.Payload))
				st = &v
			}
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
		status <- st
	}()
	budget := &budget{n: c.maxOutput}
	stderrDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(budget.discard(), ch.Stderr())
		stderrDone <- err
	}()
	ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{"keyhole"}))
	if err == nil && !ok {
		err = errors.New("refused by the server")
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx, host)
		}
		return nil, fmt.Errorf("client: %s: subsystem keyhole: %w", host, err)
	}
	if _, err := ch.Write(line.Bytes()); err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("client: %s: send request: %w", host, err)
	}
	_ = ch.CloseWrite()

	res := &Result{}
	var end *event
	br := bufio.NewReader(budget.reader(ch))
	for {
		b, rerr := br.ReadBytes('\n')
		if errors.Is(rerr, errBudget) {
			return res, &ProtocolError{Host: host, Msg: fmt.Sprintf("more than %d bytes of output", c.maxOutput)}
		}
		if len(bytes.TrimSpace(b)) > 0 {
			if end != nil {
				return res, &ProtocolError{Host: host, Msg: "data after the end line"}
			}
			var ev event
			if err := json.Unmarshal(b, &ev); err != nil {
				return res, &ProtocolError{Host: host, Msg: fmt.Sprintf("bad event line: %v", err)}
			}
			kinds := 0
			for _, set := range []bool{ev.Print != nil, ev.Decision != nil, ev.Exit != nil} {
				if set {
					kinds++
				}
			}
			switch {
			case kinds > 1:
				return res, &ProtocolError{Host: host, Msg: "event line of several kinds"}
			case ev.Print != nil:
				res.Output = append(res.Output, *ev.Print)
				if opts.Print != nil {
					opts.Print(*ev.Print)
				}
			case ev.Decision != nil:
				res.Decisions = append(res.Decisions, *ev.Decision)
				if opts.Decision != nil {
					opts.Decision(*ev.Decision)
				}
			case ev.Exit != nil:
				end = &ev
			default:
				return res, &ProtocolError{Host: host, Msg: "event line of no known kind"}
			}
		}
		if rerr != nil {
			if end != nil && !errors.Is(rerr, errBudget) {
				break
			}
			if ctx.Err() != nil {
				return res, ctxError(ctx, host)
			}
			if errors.Is(rerr, errBudget) {
				return res, &ProtocolError{Host: host, Msg: fmt.Sprintf("more than %d bytes of output", c.maxOutput)}
			}
			if !errors.Is(rerr, io.EOF) {
				return res, fmt.Errorf("client: %s: read: %w", host, rerr)
			}
			break
		}
	}
	var exit *int
	select {
	case exit = <-status:
	case <-ctx.Done():
	}
	if end == nil {
		if ctx.Err() != nil {
			return res, ctxError(ctx, host)
		}
		return res, &ProtocolError{Host: host, Msg: "the session ended without an end line"}
	}
	if err := <-stderrDone; errors.Is(err, errBudget) {
		return res, &ProtocolError{Host: host, Msg: fmt.Sprintf("more than %d bytes of output", c.maxOutput)}
	}
	res.Exit, res.Result, res.Error, res.Stats = *end.Exit, end.Result, end.Error, end.Stats
	if len(res.Result) == 0 {
		res.Result = json.RawMessage("null")
	}
	if !outcome.ValidEnd(res.Exit, res.Error) {
		return res, &ProtocolError{Host: host, Msg: fmt.Sprintf("end line with exit %d and error %v", res.Exit, res.Error)}
	}
	// No exit status (a connection closed after the end line): the end
	// line stands. One that contradicts it breaks the protocol.
	if exit != nil && *exit != res.Exit {
		return res, &ProtocolError{Host: host, Msg: fmt.Sprintf("exit status %d, end line says %d", *exit, res.Exit)}
	}
	// A dry run asked for whose operations the server did not run as one
	// (a server that took the field and ignored it) is no dry run.
	if opts.DryRun && !res.Stats.DryRun && len(res.Decisions) > 0 {
		return res, &ProtocolError{Host: host, Msg: "a dry run was asked for, and the end line does not say the script ran as one"}
	}
	return res, nil
}

// ctxError is the error of a run whose context ended.
func ctxError(ctx context.Context, host string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &TimeoutError{Op: "run on " + host, Err: ctx.Err()}
	}
	return fmt.Errorf("client: run on %s: %w", host, context.Cause(ctx))
}

var errBudget = errors.New("output budget exhausted")

// closeGrace is how long Run waits, after its context ended and the
// session was closed, for the server to let go before it closes the
// whole connection.
const closeGrace = 2 * time.Second

// budget caps the bytes read from a session's stdout and stderr together.
type budget struct {
	mu sync.Mutex
	n  int64
}

func (b *budget) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n -= int64(n)
	return b.n >= 0
}

type budgetReader struct {
	b *budget
	r io.Reader
}

func (r budgetReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 && !r.b.take(n) {
		return n, errBudget
	}
	return n, err
}

func (b *budget) reader(r io.Reader) io.Reader { return budgetReader{b: b, r: r} }

type budgetDiscard struct{ b *budget }

// Write counts stderr: the end line already holds the error it repeats.
func (w budgetDiscard) Write(p []byte) (int, error) {
	if !w.b.take(len(p)) {
		return 0, errBudget
	}
	return len(p), nil
}

func (b *budget) discard() io.Writer { return budgetDiscard{b: b} }
