package audit_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
)

func TestWriterOneLinePerEvent(t *testing.T) {
	var buf bytes.Buffer
	w := audit.NewWriter(&buf)
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mustLog(t, w, audit.Event{Time: ts, Event: audit.Decision, Session: "s1", User: "agent-7", Role: "logs",
		Action: "read", Resource: "/var/log/a.log", Decision: "deny", Exit: audit.Int(0)})
	mustLog(t, w, audit.Event{Event: audit.SessionStart, Session: "s1"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"event": "decision", "session": "s1", "user": "agent-7", "role": "logs",
		"action": "read", "resource": "/var/log/a.log", "decision": "deny", "exit": float64(0),
		"time": "2026-01-02T03:04:05Z"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if p, ok := m["policies"].([]any); !ok || len(p) != 0 {
		t.Errorf("policies = %#v, want empty list on a decision line", m["policies"])
	}
	if _, ok := m["reason"]; ok {
		t.Errorf("empty reason should be left out: %s", lines[0])
	}
}

func TestWriterConcurrentLinesDoNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	w := audit.NewWriter(lockedWriter{&buf, &mu})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				if err := w.Log(audit.Event{Event: audit.Decision, Resource: strings.Repeat("x", 500)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 800 {
		t.Fatalf("got %d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("invalid line %q", l)
		}
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func mustLog(t *testing.T, w *audit.Writer, e audit.Event) {
	t.Helper()
	if err := w.Log(e); err != nil {
		t.Fatal(err)
	}
}
