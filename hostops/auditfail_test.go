package hostops_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/hostops"
)

// failingSink refuses every line, as a full disk does, and remembers what
// it was asked to write.
type failingSink struct {
	mu     sync.Mutex
	events []audit.Event
}

func (f *failingSink) Log(e audit.Event) error {
	f.mu.Lock()
	f.events = append(f.events, e)
	f.mu.Unlock()
	return errors.New("write /var/log/keyhole/audit.jsonl: no space left on device")
}

// TestAuditFailureStopsOperation checks invariant 5 at the one door: when
// an operation's decision line cannot be written, the operation does not
// happen (no data read, no file written, no program run), and its error is
// INTERNAL, naming what was not performed.
func TestAuditFailureStopsOperation(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := newBins(t)
	src := filepath.Join(dir, "src.txt")
	mustWrite(t, src, "secret data\n", 0o644)
	h, _ := cedarHost(t,
		`@id("all-files") permit (principal, action in [Keyhole::Action::"read", Keyhole::Action::"list",
			Keyhole::Action::"stat", Keyhole::Action::"write", Keyhole::Action::"create", Keyhole::Action::"delete",
			Keyhole::Action::"mkdir", Keyhole::Action::"rename", Keyhole::Action::"chmod"],
			resource in Keyhole::Dir::"`+dir+`");`,
		permitExec("marker", b.path("marker")),
	)
	sink := &failingSink{}
	h.Audit = sink
	unchanged := func(t *testing.T) {
		t.Helper()
		if data, err := os.ReadFile(src); err != nil || string(data) != "secret data\n" {
			t.Errorf("src.txt = %q, %v", data, err)
		}
		if fi, err := os.Stat(src); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("src.txt mode changed: %v, %v", fi, err)
		}
		for _, name := range []string{"new.txt", "newdir", "moved.txt", "copy.txt"} {
			if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
				t.Errorf("%s exists: %v", name, err)
			}
		}
		if _, err := os.Stat(b.path("ran")); !os.IsNotExist(err) {
			t.Errorf("the program ran: %v", err)
		}
	}
	tests := []struct {
		name     string
		op       func() (any, error)
		action   string
		resource string
	}{
		{"read", func() (any, error) { return h.Read(src, 0) }, "read", src},
		{"read-denied", func() (any, error) { return h.Read("/etc/shadow", 0) }, "read", "/etc/shadow"},
		{"read-bad-path", func() (any, error) { return h.Read("relative", 0) }, "read", "relative"},
		{"stat", func() (any, error) { return h.Stat(src) }, "stat", src},
		{"list", func() (any, error) { return h.List(dir) }, "list", dir},
		{"write-new", func() (any, error) { return nil, h.Write(filepath.Join(dir, "new.txt"), []byte("x"), 0o644) }, "create", filepath.Join(dir, "new.txt")},
		{"write-existing", func() (any, error) { return nil, h.Write(src, []byte("x"), 0o644) }, "write", src},
		{"append", func() (any, error) { return nil, h.Append(src, []byte("x")) }, "write", src},
		{"mkdir", func() (any, error) { return nil, h.Mkdir(filepath.Join(dir, "newdir"), false) }, "mkdir", filepath.Join(dir, "newdir")},
		{"remove", func() (any, error) { return nil, h.Remove(src) }, "delete", src},
		{"rename", func() (any, error) { return nil, h.Rename(src, filepath.Join(dir, "moved.txt")) }, "rename", src},
		{"chmod", func() (any, error) { return nil, h.Chmod(src, 0o600) }, "chmod", src},
		{"copy", func() (any, error) { return nil, h.Copy(src, filepath.Join(dir, "copy.txt")) }, "read", src},
		{"exec", func() (any, error) {
			return h.Exec(context.Background(), []string{b.path("marker")}, hostops.ExecOptions{})
		}, "exec", b.path("marker")},
		{"allowed", func() (any, error) { return h.Allowed("write", src) }, "write", src},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.op()
			var e *hostops.Error
			if !errors.As(err, &e) || e.Kind != hostops.KindInternal {
				t.Fatalf("error = %v, want INTERNAL", err)
			}
			want := "audit log unwritable, " + tc.action + " " + tc.resource + " not performed"
			if e.Message != want || e.Action != tc.action || e.Resource != tc.resource {
				t.Errorf("error = %+v, want message %q", e, want)
			}
			switch v := v.(type) {
			case []byte:
				if len(v) > 0 {
					t.Errorf("read returned %q", v)
				}
			case hostops.ExecResult:
				if v.Stdout != nil || v.Exit != 0 {
					t.Errorf("exec returned %+v", v)
				}
			}
			unchanged(t)
		})
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.events) != len(tests) {
		t.Errorf("%d lines attempted, want one per operation (%d)", len(sink.events), len(tests))
	}
}

// TestExecDecisionRecordsArgv checks that an exec decision line carries the
// argument vector the policy was asked about, quoted as context.argv is.
func TestExecDecisionRecordsArgv(t *testing.T) {
	t.Parallel()
	b := newBins(t)
	h, mem := cedarHost(t, permitExec("hello", b.path("hello")))
	if _, err := h.Exec(context.Background(), []string{b.path("hello"), "a b", `c"d`}, hostops.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Exec(context.Background(), []string{b.path("other"), "--x"}, hostops.ExecOptions{}); errKind(err) != hostops.KindAccessDenied {
		t.Fatalf("other: %v", err)
	}
	if _, err := h.Read("/nonexistent", 0); err == nil {
		t.Fatal("read of a missing file succeeded")
	}
	ev := mem.Events()
	if len(ev) != 3 {
		t.Fatalf("events = %+v", ev)
	}
	want := []string{hostops.JoinArgv([]string{b.path("hello"), "a b", `c"d`}), b.path("other") + " --x", ""}
	for i, w := range want {
		if ev[i].Argv != w {
			t.Errorf("event %d (%s %s) argv = %q, want %q", i, ev[i].Action, ev[i].Decision, ev[i].Argv, w)
		}
	}
	if !strings.Contains(want[0], `"a b"`) {
		t.Errorf("argv %q is not quoted", want[0])
	}
}
