package audit

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
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
)

// Event is one audit record. Empty fields are left out of the line.
type Event struct {
	Time          time.Time `json:"time"`
	Event         string    `json:"event"`
	Session       string    `json:"session,omitempty"`
	User          string    `json:"user,omitempty"`
	Role          string    `json:"role,omitempty"`
	Source        string    `json:"source,omitempty"`
	Fingerprint   string    `json:"fingerprint,omitempty"`
	Transport     string    `json:"transport,omitempty"`
	Request       string    `json:"request,omitempty"`
	Action        string    `json:"action,omitempty"`
	Resource      string    `json:"resource,omitempty"`
	Decision      string    `json:"decision,omitempty"`
	Policies      []string  `json:"policies,omitempty"`
	PolicyVersion string    `json:"policy_version,omitempty"`
	ScriptSHA256  string    `json:"script_sha256,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	Exit          *int      `json:"exit,omitempty"`
}

// Sink receives audit events. Implementations must be safe for concurrent use.
type Sink interface {
	Log(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Log calls f(e).
func (f SinkFunc) Log(e Event) { f(e) }

// Writer writes events as JSON lines through logrus. It is safe for
// concurrent use.
type Writer struct {
	log   *logrus.Logger
	close func() error
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	l := logrus.New()
	l.SetOutput(w)
	l.SetLevel(logrus.InfoLevel)
	l.SetFormatter(&logrus.JSONFormatter{
		TimestampFormat:   time.RFC3339Nano,
		DisableHTMLEscape: true,
		FieldMap:          logrus.FieldMap{logrus.FieldKeyMsg: "event"},
	})
	return &Writer{log: l, close: func() error { return nil }}
}

// Open opens the audit log named by path for appending ("-" is stdout). The
// file is created with mode 0600 if it does not exist.
func Open(path string) (*Writer, error) {
	if path == "-" {
		return NewWriter(os.Stdout), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	w := NewWriter(f)
	w.close = f.Close
	return w, nil
}

// Log writes e as one line. A zero Time is set to now.
func (w *Writer) Log(e Event) {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	f := logrus.Fields{}
	add := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	add("session", e.Session)
	add("user", e.User)
	add("role", e.Role)
	add("source", e.Source)
	add("fingerprint", e.Fingerprint)
	add("transport", e.Transport)
	add("request", e.Request)
	add("action", e.Action)
	add("resource", e.Resource)
	add("decision", e.Decision)
	add("policy_version", e.PolicyVersion)
	add("script_sha256", e.ScriptSHA256)
	add("reason", e.Reason)
	if e.Decision != "" || len(e.Policies) > 0 {
		p := e.Policies
		if p == nil {
			p = []string{}
		}
		f["policies"] = p
	}
	if e.Exit != nil {
		f["exit"] = *e.Exit
	}
	w.log.WithFields(f).WithTime(t).Info(e.Event)
}

// Close closes the underlying file, if Open opened one.
func (w *Writer) Close() error { return w.close() }

// Discard is a Sink that drops every event.
var Discard Sink = SinkFunc(func(Event) {})

// Memory is a Sink that keeps events in memory, for tools that report on
// them (such as a dry run). It is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	events []Event
}

// Log appends e.
func (m *Memory) Log(e Event) {
	m.mu.Lock()
	m.events = append(m.events, e)
	m.mu.Unlock()
}

// Events returns a copy of the events logged so far.
func (m *Memory) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}

// Int returns a pointer to n, for Event.Exit.
func Int(n int) *int { return &n }
