package audit

import (
	"sync"
	"time"
)

// Event names, as they appear in the "event" field.
const (
	SessionStart   = "session.start"
	SessionEnd     = "session.end"
	Decision       = "decision"
	AuthRefused    = "auth.refused"
	RequestRefused = "request.refused"
	RequestGranted = "request.granted"
	PolicyReload   = "policy.reload"
	// Resumed is the first line written after lines could not be written;
	// its reason says since when and how many were lost.
	Resumed = "audit.resumed"
)

// Event is one audit record. Empty fields are left out of the line.
type Event struct {
	Time        time.Time `json:"time"`
	Event       string    `json:"event"`
	Session     string    `json:"session,omitempty"`
	User        string    `json:"user,omitempty"`
	Role        string    `json:"role,omitempty"`
	Source      string    `json:"source,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Transport   string    `json:"transport,omitempty"`
	Request     string    `json:"request,omitempty"`
	Action      string    `json:"action,omitempty"`
	Resource    string    `json:"resource,omitempty"`
	// Argv is the argument vector of an exec decision, quoted and joined
	// as the policy's context.argv is.
	Argv          string   `json:"argv,omitempty"`
	Decision      string   `json:"decision,omitempty"`
	Policies      []string `json:"policies,omitempty"`
	PolicyVersion string   `json:"policy_version,omitempty"`
	ScriptSHA256  string   `json:"script_sha256,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	Exit          *int     `json:"exit,omitempty"`
	// DryRun marks every line of a dry run (a structured request with
	// "dry_run": true): its decisions were made and recorded, and no
	// write, program or service action they allowed was performed.
	DryRun bool `json:"dry_run,omitempty"`
}

// Sink receives audit events. Log returns an error when the event was not
// recorded; the caller must then not do what the event records (DESIGN.md,
// invariant 5). Implementations must be safe for concurrent use.
type Sink interface {
	Log(Event) error
}

// Checker is a Sink that can tell, before anything is attempted, whether
// lines can be written: Ready returns nil when they can. *Writer is one.
type Checker interface {
	Ready() error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event) error

// Log calls f(e).
func (f SinkFunc) Log(e Event) error { return f(e) }

// Discard is a Sink that drops every event.
var Discard Sink = SinkFunc(func(Event) error { return nil })

// Memory is a Sink that keeps events in memory, for tools that report on
// them (such as a dry run). It is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	events []Event
}

// Log appends e.
func (m *Memory) Log(e Event) error {
	m.mu.Lock()
	m.events = append(m.events, e)
	m.mu.Unlock()
	return nil
}

// Events returns a copy of the events logged so far.
func (m *Memory) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}

// Int returns a pointer to n, for Event.Exit.
func Int(n int) *int { return &n }
