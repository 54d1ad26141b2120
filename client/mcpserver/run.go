package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/outcome"
)

// RunScriptOutput is run_script's result.
type RunScriptOutput struct {
	Hosts   []HostOutput `json:"hosts" jsonschema:"one entry per host, in the order selected"`
	Summary string       `json:"summary" jsonschema:"the hosts counted by outcome"`
}

// HostOutput is how one host's script ended.
type HostOutput struct {
	Host    string `json:"host"`
	Outcome string `json:"outcome" jsonschema:"ok, script_error, access_denied, limit_exceeded, internal_error, unreachable, auth_refused, host_key_mismatch, host_key_unknown, timed_out or failed"`
	Exit    *int   `json:"exit" jsonschema:"the script's exit status; null when no script ran"`
	Result  any    `json:"result" jsonschema:"the value the script gave result(), or null"`
	Stdout  string `json:"stdout" jsonschema:"what the script printed, one line per print"`
	// Truncated says Stdout was cut at the server's cap.
	Truncated bool `json:"truncated"`
	// ResultDropped says the result was larger than MaxResult and is
	// left out (null).
	ResultDropped bool           `json:"result_dropped"`
	Error         *outcome.Error `json:"error" jsonschema:"why the host did not end ok; null when it did"`
	Denied        []Denial       `json:"denied" jsonschema:"every operation the policy denied, caught by the script or not"`
	DurationMS    int64          `json:"duration_ms"`
	// DryRun says the host ran the script as a dry run.
	DryRun bool `json:"dry_run"`
	// Operations, in a dry run, lists every operation the script asked
	// for, allowed or not, in order: what it would have done.
	Operations []Operation `json:"operations,omitempty" jsonschema:"in a dry run: every operation in order, allowed or not"`
}

// Operation is one authorized operation of a dry run.
type Operation struct {
	Action   string   `json:"action"`
	Resource string   `json:"resource"`
	Allow    bool     `json:"allow"`
	Policies []string `json:"policies"`
}

// Denial is one denied operation.
type Denial struct {
	Action   string   `json:"action"`
	Resource string   `json:"resource"`
	Policies []string `json:"policies" jsonschema:"the ids of the policies that decided; empty when nothing permitted it"`
}

func (s *Server) runScript(ctx context.Context, req *mcp.CallToolRequest, in RunScriptInput) (*mcp.CallToolResult, RunScriptOutput, error) {
	if strings.TrimSpace(in.Script) == "" {
		return nil, RunScriptOutput{}, errors.New("script is empty")
	}
	if len(in.Script) > MaxScript {
		return nil, RunScriptOutput{}, fmt.Errorf("script is %d bytes, more than %d", len(in.Script), MaxScript)
	}
	timeout := s.cfg.Timeout
	if in.Timeout < 0 || in.Timeout > MaxTimeout.Seconds() {
		return nil, RunScriptOutput{}, fmt.Errorf("timeout %v: want 0 to %v seconds", in.Timeout, MaxTimeout.Seconds())
	}
	if in.Timeout > 0 {
		timeout = time.Duration(in.Timeout * float64(time.Second))
	}
	targets, err := s.targets(in.Hosts)
	if err != nil {
		return nil, RunScriptOutput{}, err
	}

	token := req.Params.GetProgressToken()
	done := 0
	results := s.cfg.Dialer.FanOut(ctx, targets, in.Script, client.FanOutOptions{
		Args:       in.Args,
		Parallel:   s.cfg.Parallel,
		RunTimeout: timeout,
		DryRun:     in.DryRun,
		Done: func(r client.HostResult) {
			done++
			if token == nil || req.Session == nil {
				return
			}
			// Best effort: a client that went away is seen by ctx.
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token,
				Progress:      float64(done),
				Total:         float64(len(targets)),
				Message:       r.Target.String() + ": " + r.Outcome.Label(),
			})
		},
	})
	if err := ctx.Err(); err != nil {
		return nil, RunScriptOutput{}, fmt.Errorf("run_script cancelled: %w", err)
	}
	out := RunScriptOutput{Hosts: make([]HostOutput, len(results)), Summary: client.Summarize(results).String()}
	failed := false
	for i, r := range results {
		out.Hosts[i] = s.hostOutput(r)
		if r.Outcome != client.OK {
			failed = true
		}
	}
	return &mcp.CallToolResult{IsError: failed}, out, nil
}

// targets resolves hosts: patterns over the inventory, or destinations
// when there is none. Each host comes once, in the order first named.
func (s *Server) targets(hosts Hosts) ([]client.Target, error) {
	if len(hosts) == 0 {
		return nil, errors.New("hosts: give a pattern or a list of hosts")
	}
	var out []client.Target
	seen := map[string]bool{}
	add := func(t client.Target) {
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t)
		}
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, errors.New("hosts: an empty pattern")
		}
		if s.cfg.Inventory == nil {
			for _, d := range strings.Split(h, ",") {
				t, err := client.ParseTarget(strings.TrimSpace(d))
				if err != nil {
					return nil, fmt.Errorf("hosts: %w (without an inventory, hosts are [user@]host[:port] destinations)", err)
				}
				if t.User == "" {
					t.User = s.cfg.Login
				}
				add(t)
			}
			continue
		}
		if strings.HasPrefix(h, "@") {
			// An @file pattern would read a file of the server's host.
			return nil, fmt.Errorf("hosts: %q: @file patterns are not taken here; list the hosts", h)
		}
		sel, err := s.cfg.Inventory.Select(h)
		if err != nil {
			return nil, fmt.Errorf("hosts: %w", err)
		}
		for _, ih := range sel {
			user := ih.User
			if user == "" {
				user = s.cfg.Login
			}
			add(client.Target{Name: ih.Name, Addr: ih.Addr, Port: ih.Port, User: user, Jump: ih.Jump})
		}
	}
	return out, nil
}

// hostOutput is r as run_script reports it.
func (s *Server) hostOutput(r client.HostResult) HostOutput {
	o := HostOutput{Host: r.Target.String(), Outcome: string(r.Outcome), Denied: []Denial{}, DurationMS: r.Duration.Milliseconds()}
	if res := r.Result; res != nil && r.Err == nil {
		exit := res.Exit
		o.Exit = &exit
		switch {
		case len(res.Result) > MaxResult:
			o.ResultDropped = true
		case len(res.Result) > 0 && string(res.Result) != "null":
			o.Result = res.Result
		}
		o.Stdout, o.Truncated = capLines(res.Output, s.cfg.MaxStdout)
		o.Error = res.Error
		o.DryRun = res.Stats.DryRun
		if o.DryRun {
			o.Operations = make([]Operation, 0, len(res.Decisions))
			for _, d := range res.Decisions {
				o.Operations = append(o.Operations, Operation{Action: d.Action, Resource: d.Resource, Allow: d.Allow, Policies: nonNil(d.Policies)})
			}
		}
		for _, d := range res.Denied() {
			o.Denied = append(o.Denied, Denial{Action: d.Action, Resource: d.Resource, Policies: nonNil(d.Policies)})
		}
	} else if r.Err != nil {
		kind := strings.ToUpper(string(r.Outcome))
		if r.Outcome == client.InternalError {
			kind = outcome.KindInternal
		}
		o.Error = &outcome.Error{Kind: kind, Message: r.Err.Error()}
	}
	if o.Error != nil && o.Error.Policies == nil {
		e := *o.Error
		e.Policies = []string{}
		o.Error = &e
	}
	return o
}

// capLines joins lines, each ended by a newline, into at most max bytes,
// cut at a character boundary; it says whether it cut.
func capLines(lines []string, max int) (string, bool) {
	var b strings.Builder
	for _, l := range lines {
		if b.Len()+len(l)+1 > max {
			rest := max - b.Len()
			for rest > 0 && rest < len(l) && !utf8.RuneStart(l[rest]) {
				rest--
			}
			if rest > 0 {
				b.WriteString(l[:min(rest, len(l))])
			}
			return b.String(), true
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String(), false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
