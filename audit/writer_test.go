package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
)

// TestWriterLineBytes pins the line format: the fields in Event's order,
// empty ones left out, policies always present on a decision line, one
// newline, nothing else (no logger's level or message fields).
func TestWriterLineBytes(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	tests := []struct {
		name string
		e    audit.Event
		want string
	}{
		{"decision-no-policy", audit.Event{Time: ts, Event: audit.Decision, Session: "s1", User: "agent-7", Role: "logs",
			Action: "read", Resource: "/etc/shadow", Decision: "deny", PolicyVersion: "sha256:ab"},
			`{"time":"2026-01-02T03:04:05.0000006Z","event":"decision","session":"s1","user":"agent-7","role":"logs","action":"read","resource":"/etc/shadow","decision":"deny","policies":[],"policy_version":"sha256:ab"}`},
		{"exec-argv", audit.Event{Time: ts, Event: audit.Decision, Action: "exec", Resource: "/bin/echo",
			Argv: `/bin/echo "a b" <c>`, Decision: "allow", Policies: []string{"echo"}},
			`{"time":"2026-01-02T03:04:05.0000006Z","event":"decision","action":"exec","resource":"/bin/echo","argv":"/bin/echo \"a b\" \u003cc\u003e","decision":"allow","policies":["echo"]}`},
		{"session-end", audit.Event{Time: ts, Event: audit.SessionEnd, Session: "s1", Exit: audit.Int(0)},
			`{"time":"2026-01-02T03:04:05.0000006Z","event":"session.end","session":"s1","exit":0}`},
		{"auth-refused", audit.Event{Time: ts, Event: audit.AuthRefused, Role: "x\ny", Source: "127.0.0.1", Reason: "expired"},
			`{"time":"2026-01-02T03:04:05.0000006Z","event":"auth.refused","role":"x\ny","source":"127.0.0.1","reason":"expired"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			mustLog(t, audit.NewWriter(&buf), tc.e)
			if got := buf.String(); got != tc.want+"\n" {
				t.Fatalf("line =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestWriterCapsFields checks that every string a client can influence is
// cut, with a visible marker, whoever the caller: one refused key with a
// 200 KB login name must not write 200 KB.
func TestWriterCapsFields(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("n", 200_000)
	tests := []struct {
		name  string
		e     audit.Event
		field string
		want  string
	}{
		{"user", audit.Event{User: big}, "user", strings.Repeat("n", 1024) + "…[truncated 198976 bytes]"},
		{"role", audit.Event{Event: audit.AuthRefused, Role: big}, "role", strings.Repeat("n", 1024) + "…[truncated 198976 bytes]"},
		{"request", audit.Event{Request: big}, "request", strings.Repeat("n", 1024) + "…[truncated 198976 bytes]"},
		{"source", audit.Event{Source: big}, "source", strings.Repeat("n", 1024) + "…[truncated 198976 bytes]"},
		{"action", audit.Event{Action: big}, "action", strings.Repeat("n", 1024) + "…[truncated 198976 bytes]"},
		{"transport", audit.Event{Transport: big}, "transport", strings.Repeat("n", 1024) + "…[truncated 198976 bytes]"},
		{"resource", audit.Event{Resource: big}, "resource", strings.Repeat("n", 4096) + "…[truncated 195904 bytes]"},
		{"reason", audit.Event{Reason: big}, "reason", strings.Repeat("n", 4096) + "…[truncated 195904 bytes]"},
		{"argv", audit.Event{Argv: big}, "argv", strings.Repeat("n", 4096) + "…[truncated 195904 bytes]"},
		{"at-cap-untouched", audit.Event{User: big[:1024]}, "user", big[:1024]},
		// A cut never splits a character: 1023 bytes of "a" and a 3-byte
		// rune across the cap keep the "a"s only.
		{"utf8-boundary", audit.Event{User: strings.Repeat("a", 1023) + "日本"}, "user",
			strings.Repeat("a", 1023) + "…[truncated 6 bytes]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tc.e.Time = time.Unix(0, 0)
			if tc.e.Event == "" {
				tc.e.Event = audit.Decision
			}
			mustLog(t, audit.NewWriter(&buf), tc.e)
			if buf.Len() > 6<<10 {
				t.Errorf("line is %d bytes", buf.Len())
			}
			var m map[string]any
			if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if m[tc.field] != tc.want {
				t.Errorf("%s = %.60q… (%d bytes), want %.60q… (%d bytes)", tc.field, m[tc.field], len(m[tc.field].(string)), tc.want, len(tc.want))
			}
		})
	}
	t.Run("policies-each-capped-caller-slice-kept", func(t *testing.T) {
		t.Parallel()
		pol := []string{"ok", big}
		var buf bytes.Buffer
		mustLog(t, audit.NewWriter(&buf), audit.Event{Event: audit.Decision, Decision: "allow", Policies: pol})
		var m struct{ Policies []string }
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Policies) != 2 || m.Policies[0] != "ok" || !strings.HasSuffix(m.Policies[1], "…[truncated 198976 bytes]") {
			t.Errorf("policies = %.80q", m.Policies)
		}
		if pol[1] != big {
			t.Error("the caller's slice was changed")
		}
	})
}

// TestWriterDevFull checks that a line the kernel refuses is an error, for
// every line, that Ready says so too, and that the outage is reported once.
func TestWriterDevFull(t *testing.T) {
	t.Parallel()
	w, err := audit.Open("/dev/full")
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer w.Close()
	var reports []error
	w.Notify(func(err error) { reports = append(reports, err) })
	for i := 0; i < 3; i++ {
		err := w.Log(audit.Event{Event: audit.Decision, Action: "read", Resource: "/x", Decision: "allow"})
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Log #%d = %v, want ENOSPC", i, err)
		}
	}
	if err := w.Ready(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Ready = %v, want ENOSPC", err)
	}
	if len(reports) != 1 || !errors.Is(reports[0], syscall.ENOSPC) {
		t.Fatalf("reports = %v, want one ENOSPC", reports)
	}
}

// flaky fails its writes while broken is set, after writing part of the
// line when partial is set.
type flaky struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	broken  bool
	partial bool
}

func (f *flaky) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.broken {
		return f.buf.Write(p)
	}
	if f.partial {
		f.buf.Write(p[:10])
		return 10, nil // a short write with no error is still a failure
	}
	return 0, syscall.EIO
}

func (f *flaky) set(broken, partial bool) {
	f.mu.Lock()
	f.broken, f.partial = broken, partial
	f.mu.Unlock()
}

// TestWriterResumes checks the outage's life: failures return errors,
// then the first line that can be written is an audit.resumed line that
// says since when and how many lines were lost, on a line of its own even
// after a partial write, and only then the line itself.
func TestWriterResumes(t *testing.T) {
	t.Parallel()
	for _, partial := range []bool{false, true} {
		f := &flaky{}
		w := audit.NewWriter(f)
		var reports []error
		w.Notify(func(err error) { reports = append(reports, err) })
		t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
		mustLog(t, w, audit.Event{Time: t0, Event: audit.SessionStart, Session: "a"})
		f.set(true, partial)
		for i := 0; i < 2; i++ {
			if err := w.Log(audit.Event{Time: t0.Add(time.Second), Event: audit.Decision, Session: "a"}); err == nil {
				t.Fatalf("partial=%v: Log on a broken writer succeeded", partial)
			}
		}
		f.set(false, false)
		if err := w.Ready(); err != nil {
			t.Fatalf("partial=%v: Ready = %v", partial, err)
		}
		mustLog(t, w, audit.Event{Time: t0.Add(2 * time.Second), Event: audit.SessionStart, Session: "b"})
		var lines []string
		junk := 0
		for _, l := range strings.Split(strings.TrimSuffix(f.buf.String(), "\n"), "\n") {
			if json.Valid([]byte(l)) {
				lines = append(lines, l)
			} else {
				junk++ // the pieces of partial writes stay on lines of their own
			}
		}
		if partial != (junk > 0) {
			t.Fatalf("partial=%v: %d broken lines in %q", partial, junk, f.buf.String())
		}
		if len(lines) != 3 {
			t.Fatalf("partial=%v: lines = %q", partial, lines)
		}
		var resumed audit.Event
		if err := json.Unmarshal([]byte(lines[1]), &resumed); err != nil {
			t.Fatal(err)
		}
		if resumed.Event != audit.Resumed || !strings.Contains(resumed.Reason, "from 2026-05-06T07:08:10Z (2 not written)") {
			t.Errorf("partial=%v: resumed line = %s", partial, lines[1])
		}
		if !strings.Contains(lines[2], `"session":"b"`) {
			t.Errorf("partial=%v: last line = %s", partial, lines[2])
		}
		if len(reports) != 2 || reports[0] == nil || reports[1] != nil {
			t.Errorf("partial=%v: reports = %v, want an error then nil", partial, reports)
		}
	}
}

// TestWriterRemovedLog checks a log removed from under the writer: a file
// removed alone is created again at its path; with its directory gone,
// lines fail until the directory is back, and no line goes to the
// unlinked file.
func TestWriterRemovedLog(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "log")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.jsonl")
	w, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	mustLog(t, w, audit.Event{Event: audit.SessionStart, Session: "1"})

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	mustLog(t, w, audit.Event{Event: audit.SessionStart, Session: "2"})
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), `"session":"2"`) || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("recreated log = %q, %v", b, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("recreated log mode: %v, %v", fi, err)
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err = w.Log(audit.Event{Event: audit.SessionStart, Session: "3"})
	if err == nil || !strings.Contains(err.Error(), "cannot be created again") {
		t.Fatalf("Log with the directory gone = %v", err)
	}
	if err := w.Ready(); err == nil {
		t.Fatal("Ready with the directory gone = nil")
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.Ready(); err != nil {
		t.Fatalf("Ready with the directory back = %v", err)
	}
	mustLog(t, w, audit.Event{Event: audit.SessionStart, Session: "4"})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"event":"audit.resumed"`) || !strings.Contains(lines[1], `"session":"4"`) {
		t.Fatalf("log after the outage = %q", lines)
	}
}

// TestWriterRefusesSymlink: a symlink at the log's path is refused, at open
// and when the log is created again after its removal, and the file it
// points to is not written.
func TestWriterRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "audit.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if w, err := audit.Open(link); err == nil || !strings.Contains(err.Error(), "symlink") {
		if w != nil {
			w.Close()
		}
		t.Fatalf("open of a symlinked log: %v, want refused", err)
	}

	// A log removed and replaced by a symlink: the next line fails.
	log := filepath.Join(dir, "real.log")
	w, err := audit.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Log(audit.Event{Event: audit.SessionStart}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, log); err != nil {
		t.Fatal(err)
	}
	if err := w.Log(audit.Event{Event: audit.SessionEnd}); err == nil {
		t.Error("a line went through a symlink planted where the log was")
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "precious\n" {
		t.Errorf("the symlink's target was written: %q, %v", b, err)
	}
}
