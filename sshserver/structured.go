package sshserver

// The structured protocol, subsystem "keyhole" (DESIGN.md, "Wire
// protocols"): one JSON request line in; JSON lines out: a print event per
// print call, a decision event per authorized operation, then one end line
// with the exit status, the result, the error and the statistics.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/outcome"
	"github.com/keyhole-dev/keyhole/worker"
)

// structuredRequest is the request line of subsystem keyhole.
type structuredRequest struct {
	Script *string         `json:"script"`
	Args   json.RawMessage `json:"args"`
	// DryRun is the raw "dry_run" value: absent, true or false
	// (parseRequest refuses anything else); dryRun is what it says.
	DryRun json.RawMessage `json:"dry_run"`
	dryRun bool
}

// Events and the end line of the structured protocol.
type (
	printEvent struct {
		Print string `json:"print"`
	}
	decisionEvent struct {
		Decision decisionBody `json:"decision"`
	}
	decisionBody struct {
		Action   string   `json:"action"`
		Resource string   `json:"resource"`
		Allow    bool     `json:"allow"`
		Policies []string `json:"policies"`
	}
	endLine struct {
		Exit   int             `json:"exit"`
		Result json.RawMessage `json:"result"`
		Error  *endError       `json:"error"`
		Stats  endStats        `json:"stats"`
	}
	endError struct {
		Kind     string   `json:"kind"`
		Message  string   `json:"message"`
		Action   string   `json:"action"`
		Resource string   `json:"resource"`
		Policies []string `json:"policies"`
	}
	endStats struct {
		Steps        uint64 `json:"steps"`
		DurationMS   int64  `json:"duration_ms"`
		BytesRead    int64  `json:"bytes_read"`
		BytesWritten int64  `json:"bytes_written"`
		Allowed      int    `json:"allowed"`
		Denied       int    `json:"denied"`
		// DryRun: the script ran as a dry run (dryrun.go).
		DryRun bool `json:"dry_run,omitempty"`
	}
)

// maxRequestLine is the cap on a request line: the script, JSON-escaped,
// and its arguments.
func (s *Server) maxRequestLine() int64 { return 2*s.cfg.Limits.MaxScript + 64<<10 }

var errLineTooLong = errors.New("request line too long")

// runStructured reads the request line, runs its script and reports in
// JSON lines. It starts as soon as the line is complete, without waiting
// for the end of input.
func (ss *session) runStructured(ctx context.Context) int {
	var out io.Writer = ss.ch
	if ss.pty {
		out = &crlfWriter{w: ss.ch}
	}
	jw := &jsonLines{w: out}
	max := ss.s.maxRequestLine()
	var line []byte
	var err error
	if !ss.receive(func() { line, err = readLine(ss.ch, max) }) {
		exit, kind, msg := ss.notReceived()
		return ss.refuseStructured(jw, exit, kind, msg)
	}
	if err != nil {
		if errors.Is(err, errLineTooLong) {
			return ss.refuseStructured(jw, outcome.ExitLimitExceeded, outcome.KindLimitExceeded,
				fmt.Sprintf("request line longer than %d bytes", max))
		}
		return ss.refuseStructured(jw, outcome.ExitInternal, outcome.KindInternal, "reading request: "+err.Error())
	}
	req, err := parseRequest(line)
	if err != nil {
		return ss.refuseStructured(jw, outcome.ExitScriptError, outcome.KindInvalidArgument, err.Error())
	}
	src := *req.Script
	if req.dryRun {
		ss.beginDryRun()
	}
	sum, event, tooBig := ss.beginScript(src)
	if tooBig != "" {
		return ss.finishStructured(jw, worker.EndWith(outcome.ExitLimitExceeded, outcome.KindLimitExceeded, tooBig))
	}
	st := ss.startMessage(src, sum, req.Args, event.Transport)
	st.DryRun = event.DryRun
	end := ss.runWorker(ctx, st, event, worker.RunOptions{
		Print: func(p []byte) error {
			return jw.write(printEvent{Print: string(bytes.TrimSuffix(p, []byte("\n")))})
		},
		Cat: func(r io.Reader, path string) (int64, error) { return catEvents(jw, r, path) },
		Decision: func(e audit.Event) {
			pol := e.Policies
			if pol == nil {
				pol = []string{}
			}
			_ = jw.write(decisionEvent{Decision: decisionBody{Action: e.Action, Resource: e.Resource,
				Allow: e.Decision == "allow", Policies: pol}})
		},
	})
	return ss.finishStructured(jw, end)
}

// parseRequest checks a request line: one JSON object with a string
// "script" and, optionally, an object "args" and a boolean "dry_run";
// nothing else. Keys are
// exact: encoding/json alone would take "Script" (or "ſcript") for
// "script" and the last of two equal keys, so a gateway that reads the
// line differently would approve one script while another runs.
func parseRequest(line []byte) (*structuredRequest, error) {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil, errors.New("request: empty request line, want {\"script\": \"...\", \"args\": {...}}")
	}
	if err := checkKeys(line); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var req structuredRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("request: not a JSON object of script and args: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("request: data after the JSON object")
	}
	if req.Script == nil {
		return nil, errors.New("request: missing \"script\"")
	}
	args := bytes.TrimSpace(req.Args)
	if len(args) > 0 && !bytes.Equal(args, []byte("null")) && args[0] != '{' {
		return nil, errors.New("request: \"args\" must be a JSON object")
	}
	dry, err := dryRunOf(req.DryRun)
	if err != nil {
		return nil, err
	}
	req.dryRun = dry
	return &req, nil
}

// requestKeys are the keys of a request object, spelled exactly.
var requestKeys = []string{"script", "args", "dry_run"}

// checkKeys refuses a request whose first JSON value has a key outside
// requestKeys at the top level, or the same key twice in any object.
// Malformed JSON passes: the decoder that follows reports it.
func checkKeys(line []byte) error {
	type frame struct {
		obj     bool
		wantKey bool
		keys    map[string]bool
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.wantKey {
			if key, ok := tok.(string); ok {
				if top.keys[key] {
					return fmt.Errorf("request: duplicate key %q", key)
				}
				if len(stack) == 1 && !slices.Contains(requestKeys, key) {
					return fmt.Errorf("request: unknown field %q (keys are exact and lower case: %q, %q, %q)", key, requestKeys[0], requestKeys[1], requestKeys[2])
				}
				top.keys[key] = true
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, wantKey: true, keys: map[string]bool{}})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			if len(stack) == 0 {
				return nil
			}
			stack = stack[:len(stack)-1]
		}
		// A value has ended.
		if len(stack) == 0 {
			return nil
		}
		if t := stack[len(stack)-1]; t.obj {
			t.wantKey = true
		}
	}
}

// readLine reads up to and without the first newline, at most max bytes.
// The end of input also ends the line.
func readLine(r io.Reader, max int64) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, max+1))
	line, err := br.ReadBytes('\n')
	if err == nil {
		return bytes.TrimSuffix(line, []byte("\n")), nil
	}
	if !errors.Is(err, io.EOF) {
		return nil, err
	}
	if int64(len(line)) > max {
		return nil, errLineTooLong
	}
	return line, nil
}

// refuseStructured audits a request that runs no script and ends it.
func (ss *session) refuseStructured(jw *jsonLines, exit int, kind, msg string) int {
	ss.log(audit.Event{Event: audit.RequestRefused, Request: "subsystem keyhole", Reason: msg})
	return ss.finishStructured(jw, worker.EndWith(exit, kind, msg))
}

// finishStructured writes the end line, the stderr line, the exit status,
// and closes the channel for writing.
func (ss *session) finishStructured(jw *jsonLines, end *worker.End) int {
	line := endLine{
		Exit:   end.Exit,
		Result: end.Value,
		Stats: endStats{Steps: end.Steps, DurationMS: end.Duration.Milliseconds(), BytesRead: end.BytesRead,
			BytesWritten: end.BytesWritten, Allowed: end.Allowed, Denied: end.Denied, DryRun: ss.isDryRun()},
	}
	if len(line.Result) == 0 {
		line.Result = json.RawMessage("null")
	}
	if e := end.Err; e != nil {
		pol := e.Policies
		if pol == nil {
			pol = []string{}
		}
		line.Error = &endError{Kind: e.Kind, Message: e.Message, Action: e.Action, Resource: e.Resource, Policies: pol}
	}
	_ = jw.write(line)
	return ss.finish(end.Exit, end.Err)
}

// jsonLines writes one JSON value a line. Only one goroutine writes at a
// time: the worker's reader while the script runs, then the script's.
type jsonLines struct{ w io.Writer }

func (j *jsonLines) write(v any) error {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := io.WriteString(j.w, b.String())
	return err
}
