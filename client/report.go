package client

import (
	"encoding/json"
	"strings"

	"github.com/keyhole-dev/keyhole/outcome"
)

// hostJSON is one host's line of a fan-out's JSON output.
type hostJSON struct {
	Host       string          `json:"host"`
	Addr       string          `json:"addr"`
	Outcome    Outcome         `json:"outcome"`
	Exit       *int            `json:"exit"`
	Result     json.RawMessage `json:"result"`
	Error      *outcome.Error  `json:"error"`
	Denied     []Decision      `json:"denied"`
	Output     []string        `json:"output"`
	DurationMS int64           `json:"duration_ms"`
}

// MarshalJSON is the host's line of `keyhole run --json` over several
// hosts: host, addr, outcome, exit (null when no script ended), result,
// error (the script's, or for a host where none ran a kind named after
// the outcome: UNREACHABLE, AUTH_REFUSED, HOST_KEY_MISMATCH,
// HOST_KEY_UNKNOWN, TIMED_OUT, FAILED, INTERNAL), the denied operations,
// the output lines and the duration in milliseconds.
func (r HostResult) MarshalJSON() ([]byte, error) {
	j := hostJSON{Host: r.Target.String(), Addr: r.Target.address(), Outcome: r.Outcome,
		Result: json.RawMessage("null"), Denied: []Decision{}, Output: []string{}, DurationMS: r.Duration.Milliseconds()}
	if res := r.Result; res != nil && r.Err == nil {
		exit := res.Exit
		j.Exit = &exit
		if len(res.Result) > 0 {
			j.Result = res.Result
		}
		j.Error = res.Error
		if d := res.Denied(); d != nil {
			j.Denied = d
		}
		if res.Output != nil {
			j.Output = res.Output
		}
	} else if r.Err != nil {
		kind := strings.ToUpper(string(r.Outcome))
		if r.Outcome == InternalError {
			kind = outcome.KindInternal
		}
		j.Error = &outcome.Error{Kind: kind, Message: r.Err.Error(), Policies: []string{}}
	}
	return json.Marshal(j)
}

// ErrorLine is the one-line reason a host did not end ok, "" when it
// did: the script's error as the plain protocol prints it ("KIND:
// message"), or the outcome and the connection's error.
func (r HostResult) ErrorLine() string {
	switch {
	case r.Err != nil:
		return r.Outcome.Label() + ": " + r.Err.Error()
	case r.Result != nil && r.Result.Error != nil:
		return r.Result.Error.Kind + ": " + r.Result.Error.Message
	}
	return ""
}
