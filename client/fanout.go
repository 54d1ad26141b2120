package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keyhole-dev/keyhole/outcome"
)

// Outcome is how one host of a fan-out ended.
type Outcome string

// The outcomes, in the order summaries list them.
const (
	OK              Outcome = "ok"                // the script ended with exit 0
	ScriptError     Outcome = "script_error"      // exit 1 (script error) or 2 (syntax error)
	AccessDenied    Outcome = "access_denied"     // exit 13
	LimitExceeded   Outcome = "limit_exceeded"    // exit 124
	InternalError   Outcome = "internal_error"    // exit 125, or a server breaking the protocol
	Unreachable     Outcome = "unreachable"       // no TCP connection (refused, no route, no such host)
	AuthRefused     Outcome = "auth_refused"      // every identity refused
	HostKeyMismatch Outcome = "host_key_mismatch" // the host presented another key than known_hosts holds
	HostKeyUnknown  Outcome = "host_key_unknown"  // no known key nor CA vouches for the host
	TimedOut        Outcome = "timed_out"         // the connect or the run timeout passed
	Failed          Outcome = "failed"            // anything else (a session refused, a jump host failing)
)

// Outcomes lists every outcome in summary order.
var Outcomes = []Outcome{OK, ScriptError, AccessDenied, LimitExceeded, InternalError, Unreachable,
	AuthRefused, HostKeyMismatch, HostKeyUnknown, TimedOut, Failed}

// Label is the outcome in words, for summaries.
func (o Outcome) Label() string {
	switch o {
	case OK:
		return "ok"
	case ScriptError:
		return "script error"
	case AccessDenied:
		return "access denied"
	case LimitExceeded:
		return "limit exceeded"
	case InternalError:
		return "internal error"
	case Unreachable:
		return "unreachable"
	case AuthRefused:
		return "authentication refused"
	case HostKeyMismatch:
		return "host key mismatch"
	case HostKeyUnknown:
		return "host key unknown"
	case TimedOut:
		return "timed out"
	}
	return "failed"
}

// Classify names the outcome of a script run: err from Dial or Run, res
// the result when the script's end was learned.
func Classify(res *Result, err error) Outcome {
	var (
		te *TimeoutError
		he *HostKeyError
		ae *AuthError
		ue *UnreachableError
		pe *ProtocolError
	)
	switch {
	case err == nil && res != nil:
		switch res.Exit {
		case outcome.ExitOK:
			return OK
		case outcome.ExitScriptError, outcome.ExitSyntaxError:
			return ScriptError
		case outcome.ExitAccessDenied:
			return AccessDenied
		case outcome.ExitLimitExceeded:
			return LimitExceeded
		}
		return InternalError
	case errors.As(err, &te), errors.Is(err, context.DeadlineExceeded):
		return TimedOut
	case errors.As(err, &he):
		if he.Mismatch() {
			return HostKeyMismatch
		}
		return HostKeyUnknown
	case errors.As(err, &ae):
		return AuthRefused
	case errors.As(err, &ue):
		return Unreachable
	case errors.As(err, &pe):
		return InternalError
	}
	return Failed
}

// HostResult is the end of one host of a fan-out.
type HostResult struct {
	Target   Target
	Outcome  Outcome
	Result   *Result // nil when the script's end was not learned
	Err      error   // why, when Outcome is not one of the script's own
	Duration time.Duration
}

// FanOutOptions say how FanOut runs.
type FanOutOptions struct {
	Args map[string]any // the script's args, the same on every host
	// Parallel is how many hosts run at once; 0 means DefaultParallel.
	Parallel int
	// RunTimeout bounds each host's script from its session's start; 0
	// means DefaultRunTimeout. The connect timeout is the Dialer's.
	RunTimeout time.Duration
	// Done, when set, is called as each host ends, one call at a time.
	Done func(HostResult)
	// DryRun runs the script as a dry run on every host
	// (RunOptions.DryRun).
	DryRun bool
}

// Defaults of FanOutOptions.
const (
	DefaultParallel   = 20
	DefaultRunTimeout = 5 * time.Minute
)

// FanOut runs script on every target, at most Parallel at once, each on
// its own connection, and returns the results in the targets' order. No
// host takes longer than its connect timeout per hop plus the run
// timeout. When ctx is cancelled, the hosts running end and those not
// started end at once, as Failed (TimedOut when ctx's deadline passed).
func (d *Dialer) FanOut(ctx context.Context, targets []Target, script string, opts FanOutOptions) []HostResult {
	runTimeout := opts.RunTimeout
	if runTimeout <= 0 {
		runTimeout = DefaultRunTimeout
	}
	out := make([]HostResult, len(targets))
	var mu sync.Mutex // serializes opts.Done
	eachBounded(len(targets), opts.Parallel, func(i int) {
		hr := d.runOne(ctx, targets[i], script, opts.Args, runTimeout, opts.DryRun)
		out[i] = hr
		if opts.Done != nil {
			mu.Lock()
			opts.Done(hr)
			mu.Unlock()
		}
	})
	return out
}

// eachBounded calls f(i) for every i below n, at most par at once (par
// <= 0 means DefaultParallel), and returns when every call has.
func eachBounded(n, par int, f func(i int)) {
	if par <= 0 {
		par = DefaultParallel
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(par, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// runOne connects to t, runs the script and closes the connection.
func (d *Dialer) runOne(ctx context.Context, t Target, script string, args map[string]any, timeout time.Duration, dryRun bool) HostResult {
	start := time.Now()
	hr := HostResult{Target: t}
	c, err := d.Dial(ctx, t)
	if err == nil {
		hr.Result, err = c.RunWith(ctx, script, RunOptions{Args: args, Timeout: timeout, DryRun: dryRun})
		c.Close()
	}
	hr.Err = err
	hr.Outcome = Classify(hr.Result, err)
	if err != nil && hr.Outcome != InternalError {
		hr.Result = nil
	}
	hr.Duration = time.Since(start)
	return hr
}

// FanOut connects with cfg and runs script on every target; see
// Dialer.FanOut. Its error is one of setting up (identities, known
// hosts); every host's own failure is in its HostResult.
func FanOut(ctx context.Context, cfg Config, targets []Target, script string, opts FanOutOptions) ([]HostResult, error) {
	d, err := NewDialer(cfg)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.FanOut(ctx, targets, script, opts), nil
}

// Exit statuses of a fan-out (keyhole run over several hosts).
const (
	ExitAllOK         = 0 // every host ended ok
	ExitSomeFailed    = 3 // at least one host did not end ok
	ExitCouldNotStart = 4 // nothing ran: identities, known hosts, hosts list or script unusable
)

// Summary counts a fan-out's hosts by outcome.
type Summary struct {
	Total  int
	Counts map[Outcome]int
	Failed []Target // the hosts that did not end ok, in order
}

// Summarize counts results by outcome.
func Summarize(results []HostResult) Summary {
	s := Summary{Total: len(results), Counts: map[Outcome]int{}}
	for _, r := range results {
		s.Counts[r.Outcome]++
		if r.Outcome != OK {
			s.Failed = append(s.Failed, r.Target)
		}
	}
	return s
}

// ExitStatus is ExitAllOK when every host ended ok, else ExitSomeFailed.
func (s Summary) ExitStatus() int {
	if len(s.Failed) > 0 {
		return ExitSomeFailed
	}
	return ExitAllOK
}

// String is the summary line: "50 hosts: 42 ok, 3 access denied, …",
// outcomes in the order of Outcomes, those with no host left out.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d hosts:", s.Total)
	sep := " "
	for _, o := range Outcomes {
		if n := s.Counts[o]; n > 0 {
			fmt.Fprintf(&b, "%s%d %s", sep, n, o.Label())
			sep = ", "
		}
	}
	return b.String()
}
