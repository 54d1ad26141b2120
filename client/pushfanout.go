package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keyhole-dev/keyhole/outcome"
)

// PushHostResult is how a push ended on one host. Its HostResult says
// the outcome as a fan-out's (OK, AccessDenied, Unreachable, …); its
// Result is the script that ended the push: the Then script when it ran,
// else the hash check when it failed.
type PushHostResult struct {
	HostResult
	Push *PushResult // nil when no connection was made
}

// Status is "changed" (a file was written), "unchanged" (every file
// was already there) or "failed".
func (r PushHostResult) Status() string {
	switch {
	case r.Outcome != OK:
		return "failed"
	case r.Push != nil && len(r.Push.Changed) > 0:
		return "changed"
	}
	return "unchanged"
}

// ClassifyPush names the outcome of a push: a failed hash check or Then
// script as a script's, an sftp operation the policy refused as
// AccessDenied, the connection's failures as Classify does.
func ClassifyPush(pr *PushResult, err error) (Outcome, *Result) {
	var res *Result
	if pr != nil {
		res = pr.Check
		if pr.Then != nil {
			res = pr.Then
		}
	}
	if pe := (*PushError)(nil); err != nil && asPushError(err, &pe) {
		if pe.Denied() {
			return AccessDenied, nil
		}
		return Failed, nil
	}
	o := Classify(res, err)
	if err != nil && o != InternalError {
		res = nil
	}
	return o, res
}

func asPushError(err error, pe **PushError) bool {
	for err != nil {
		if e, ok := err.(*PushError); ok {
			*pe = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// PushFanOutOptions say how PushFanOut runs.
type PushFanOutOptions struct {
	PushOptions
	// Parallel is how many hosts push at once; 0 means DefaultParallel.
	Parallel int
	// Progress, when set, is called with the bytes uploaded to any host
	// as they go, one call at a time.
	Progress func(host Target, n int64)
	// Done, when set, is called as each host ends, one call at a time
	// (and never at once with Progress).
	Done func(PushHostResult)
}

// PushFanOut pushes files to every target, at most Parallel at once,
// each over its own connection, and returns the results in the targets'
// order. Timeout (default DefaultRunTimeout) bounds each host's push
// after its connection is made.
func (d *Dialer) PushFanOut(ctx context.Context, targets []Target, files []PushFile, opts PushFanOutOptions) []PushHostResult {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRunTimeout
	}
	out := make([]PushHostResult, len(targets))
	var mu sync.Mutex // serializes opts.Progress and opts.Done
	eachBounded(len(targets), opts.Parallel, func(i int) {
		po := opts.PushOptions
		if opts.Progress != nil {
			t := targets[i]
			po.Progress = func(n int64) {
				mu.Lock()
				opts.Progress(t, n)
				mu.Unlock()
			}
		}
		r := d.pushOne(ctx, targets[i], files, po)
		out[i] = r
		if opts.Done != nil {
			mu.Lock()
			opts.Done(r)
			mu.Unlock()
		}
	})
	return out
}

func (d *Dialer) pushOne(ctx context.Context, t Target, files []PushFile, opts PushOptions) PushHostResult {
	start := time.Now()
	r := PushHostResult{HostResult: HostResult{Target: t}}
	c, err := d.Dial(ctx, t)
	if err == nil {
		r.Push, err = c.Push(ctx, files, opts)
		c.Close()
	}
	r.Err = err
	r.Outcome, r.Result = ClassifyPush(r.Push, err)
	r.Duration = time.Since(start)
	return r
}

// pushJSON is one host's line of `keyhole push --json`.
type pushJSON struct {
	Host       string          `json:"host"`
	Addr       string          `json:"addr"`
	Outcome    Outcome         `json:"outcome"`
	Status     string          `json:"status"`
	Changed    []string        `json:"changed"`
	Unchanged  []string        `json:"unchanged"`
	Then       json.RawMessage `json:"then"`
	Exit       *int            `json:"exit"`
	Error      *outcome.Error  `json:"error"`
	Denied     []Decision      `json:"denied"`
	Output     []string        `json:"output"`
	DurationMS int64           `json:"duration_ms"`
}

// MarshalJSON is the host's line of `keyhole push --json`: host, addr,
// outcome, status (changed, unchanged, failed), the paths changed and
// unchanged, then (the Then script's result value, null when it did not
// run), and exit, error, denied and output of the script that ended the
// push (the Then script, or a failed hash check); for a failure that was
// no script's, exit is null and error's kind is named after the outcome
// as in `keyhole run --json`.
func (r PushHostResult) MarshalJSON() ([]byte, error) {
	base, err := r.HostResult.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var h hostJSON
	if err := json.Unmarshal(base, &h); err != nil {
		return nil, err
	}
	j := pushJSON{Host: h.Host, Addr: h.Addr, Outcome: h.Outcome, Status: r.Status(),
		Changed: []string{}, Unchanged: []string{}, Then: json.RawMessage("null"),
		Exit: h.Exit, Error: h.Error, Denied: h.Denied, Output: h.Output, DurationMS: h.DurationMS}
	if p := r.Push; p != nil {
		if p.Changed != nil {
			j.Changed = p.Changed
		}
		if p.Unchanged != nil {
			j.Unchanged = p.Unchanged
		}
		if p.Then != nil && len(p.Then.Result) > 0 {
			j.Then = p.Then.Result
		}
	}
	if j.Outcome == AccessDenied && j.Error == nil {
		j.Error = &outcome.Error{Kind: outcome.KindAccessDenied, Message: fmt.Sprint(r.Err), Policies: []string{}}
	}
	return json.Marshal(j)
}

// PushSummary is the summary line of a push: "3 hosts: 1 changed, 1
// unchanged, 1 access denied", the failures in the order of Outcomes.
func PushSummary(results []PushHostResult) (string, Summary) {
	hr := make([]HostResult, len(results))
	changed, unchanged := 0, 0
	for i, r := range results {
		hr[i] = r.HostResult
		switch r.Status() {
		case "changed":
			changed++
		case "unchanged":
			unchanged++
		}
	}
	s := Summarize(hr)
	var b strings.Builder
	fmt.Fprintf(&b, "%d hosts: %d changed, %d unchanged", s.Total, changed, unchanged)
	for _, o := range Outcomes[1:] {
		if n := s.Counts[o]; n > 0 {
			fmt.Fprintf(&b, ", %d %s", n, o.Label())
		}
	}
	return b.String(), s
}
