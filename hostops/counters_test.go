package hostops_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/hostops"
)

// countedHost is a Host over rwSandbox with the given byte budgets, that
// may also run /bin/cat and /bin/sh.
func countedHost(t *testing.T, maxRead, maxWrite int64) (*sandbox, *hostops.Host, *audit.Memory) {
	t.Helper()
	s := rwSandbox(t)
	p := s.writePolicy()
	p.rules = append(p.rules, rule{id: "bin", actions: []string{"exec"}, under: []string{realPath(t, "/bin"), realPath(t, "/usr/bin")}})
	h, mem := newHost(p)
	h.Counters = &hostops.Counters{MaxRead: maxRead, MaxWrite: maxWrite}
	return s, h, mem
}

func TestCountersCountEveryOperation(t *testing.T) {
	s, h, _ := countedHost(t, 0, 0)
	pub := s.path("allowed/public.txt") // "public data\n", 12 bytes
	rw := s.path("allowed/rw")
	const n = int64(len("public data\n"))
	steps := []struct {
		name          string
		op            func() error
		read, written int64 // what the step adds
	}{
		{"read", func() error { _, err := h.Read(pub, 0); return err }, n, 0},
		{"read-max-bytes", func() error { _, err := h.Read(pub, 3); return err }, 3, 0},
		{"lines", func() error { _, err := h.Lines(pub, 0); return err }, n, 0},
		{"tail", func() error { _, err := h.Tail(context.Background(), pub, 1); return err }, n, 0},
		{"grep", func() error { _, err := h.Grep(pub, regexp.MustCompile("data"), 0); return err }, n, 0},
		{"sha256", func() error { _, err := h.Sha256(context.Background(), pub); return err }, n, 0},
		{"write", func() error { return h.Write(rw+"/w.txt", []byte("12345"), hostops.KeepMode) }, 0, 5},
		{"append", func() error { return h.Append(rw+"/w.txt", []byte("678")) }, 0, 3},
		{"copy", func() error { return h.Copy(pub, rw+"/copy.txt") }, n, n},
		{"exec-stdin-stdout", func() error {
			_, err := h.Exec(context.Background(), []string{"cat"}, hostops.ExecOptions{Stdin: []byte("hello"), HasStdin: true})
			return err
		}, 5, 5},
		{"exec-stderr", func() error {
			_, err := h.Exec(context.Background(), []string{"sh", "-c", "echo oops >&2"}, hostops.ExecOptions{})
			return err
		}, 5, 0},
		{"denied-read-moves-nothing", func() error {
			if _, err := h.Read(s.path("forbidden/secret"), 0); errKind(err) != hostops.KindAccessDenied {
				return errors.New("want ACCESS_DENIED, got " + errKind(err))
			}
			return nil
		}, 0, 0},
	}
	for _, st := range steps {
		r0, w0 := h.Counters.Read(), h.Counters.Written()
		if err := st.op(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := h.Counters.Read() - r0; got != st.read {
			t.Errorf("%s: read %d bytes, want %d", st.name, got, st.read)
		}
		if got := h.Counters.Written() - w0; got != st.written {
			t.Errorf("%s: wrote %d bytes, want %d", st.name, got, st.written)
		}
	}
	if e := h.Counters.Exceeded(); e != nil {
		t.Errorf("no cap set, yet Exceeded = %v", e)
	}
}

func TestCountersReadBudget(t *testing.T) {
	const n = int64(len("public data\n"))
	cases := []struct {
		name string
		max  int64
		op   func(h *hostops.Host, path string) error
	}{
		{"read", n + 3, func(h *hostops.Host, p string) error { _, err := h.Read(p, 0); return err }},
		// A caller's max_bytes above what is left is not a silent cut.
		{"read-max-bytes", n + 3, func(h *hostops.Host, p string) error { _, err := h.Read(p, 100); return err }},
		{"lines", n + 3, func(h *hostops.Host, p string) error { _, err := h.Lines(p, 0); return err }},
		{"lines-read-ahead", n + 3, func(h *hostops.Host, p string) error { _, err := h.Lines(p, 1); return err }},
		{"tail", n + 3, func(h *hostops.Host, p string) error { _, err := h.Tail(context.Background(), p, 5); return err }},
		{"grep", n + 3, func(h *hostops.Host, p string) error {
			_, err := h.Grep(p, regexp.MustCompile("x"), 0)
			return err
		}},
		{"sha256", n + 3, func(h *hostops.Host, p string) error { _, err := h.Sha256(context.Background(), p); return err }},
		{"exec-output", n + 3, func(h *hostops.Host, p string) error {
			_, err := h.Exec(context.Background(), []string{"cat", p}, hostops.ExecOptions{})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, h, _ := countedHost(t, tc.max, 0)
			pub := s.path("allowed/public.txt")
			if err := tc.op(h, pub); err != nil {
				t.Fatalf("first run, within budget: %v", err)
			}
			err := tc.op(h, pub)
			if errKind(err) != hostops.KindLimitExceeded || !strings.Contains(err.Error(), "read limit of") {
				t.Fatalf("second run, past budget: %v, want the read limit's LIMIT_EXCEEDED", err)
			}
			if got := h.Counters.Read(); got > tc.max+n {
				t.Errorf("read %d bytes with a budget of %d: more than one operation's worth past it", got, tc.max)
			}
			if h.Counters.Exceeded() == nil {
				t.Fatal("Exceeded is nil after the cap was hit")
			}
			// Once over, every later read fails, even a small one.
			if _, err := h.Read(s.path("allowed/sub/nested.txt"), 1); errKind(err) != hostops.KindLimitExceeded {
				t.Errorf("read after the cap: %v, want LIMIT_EXCEEDED", err)
			}
		})
	}
}

func TestCountersWriteBudget(t *testing.T) {
	cases := []struct {
		name string
		op   func(h *hostops.Host, s *sandbox) error
	}{
		{"write", func(h *hostops.Host, s *sandbox) error {
			return h.Write(s.path("allowed/rw/old.txt"), []byte("123456"), hostops.KeepMode)
		}},
		{"append", func(h *hostops.Host, s *sandbox) error {
			return h.Append(s.path("allowed/rw/old.txt"), []byte("123456"))
		}},
		{"copy", func(h *hostops.Host, s *sandbox) error {
			return h.Copy(s.path("allowed/public.txt"), s.path("allowed/rw/old.txt"))
		}},
		{"exec-stdin", func(h *hostops.Host, s *sandbox) error {
			_, err := h.Exec(context.Background(), []string{"sh", "-c", ": > " + s.path("allowed/rw/ran")},
				hostops.ExecOptions{Stdin: []byte("123456"), HasStdin: true})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, h, mem := countedHost(t, 0, 10)
			if err := h.Write(s.path("allowed/rw/first"), []byte("12345"), hostops.KeepMode); err != nil {
				t.Fatal(err)
			}
			before := len(mem.Events())
			err := tc.op(h, s)
			if errKind(err) != hostops.KindLimitExceeded || !strings.Contains(err.Error(), "write limit of 10 bytes") {
				t.Fatalf("past the budget: %v, want the write limit's LIMIT_EXCEEDED", err)
			}
			if got, _ := os.ReadFile(s.path("allowed/rw/old.txt")); string(got) != "old" {
				t.Errorf("old.txt = %q after a refused write, want it unchanged", got)
			}
			if _, err := os.Stat(s.path("allowed/rw/ran")); err == nil {
				t.Error("the program ran although its input was past the budget")
			}
			if got := h.Counters.Written(); got != 5 {
				t.Errorf("written = %d, want 5 (a refused write is not counted)", got)
			}
			if len(mem.Events()) == before {
				t.Error("no audit line for the refused operation")
			}
			// Once over, even a write that would fit is refused.
			if err := h.Write(s.path("allowed/rw/small"), []byte("1"), hostops.KeepMode); errKind(err) != hostops.KindLimitExceeded {
				t.Errorf("write after the cap: %v, want LIMIT_EXCEEDED", err)
			}
		})
	}
}

func TestCountersDryRunWritesNothing(t *testing.T) {
	s, h, _ := countedHost(t, 0, 1)
	h.DryRun = true
	if err := h.Write(s.path("allowed/rw/new"), []byte("more than one byte"), hostops.KeepMode); err != nil {
		t.Fatal(err)
	}
	if got := h.Counters.Written(); got != 0 {
		t.Errorf("a dry run counted %d bytes written", got)
	}
}

func TestCountersConcurrent(t *testing.T) {
	s, h, _ := countedHost(t, 0, 0)
	pub := s.path("allowed/public.txt")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := h.Read(pub, 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got, want := h.Counters.Read(), int64(8*20*len("public data\n")); got != want {
		t.Errorf("read = %d, want %d", got, want)
	}
}

func TestCountersNil(t *testing.T) {
	var c *hostops.Counters
	if c.Read() != 0 || c.Written() != 0 || c.Exceeded() != nil {
		t.Error("a nil Counters reports something")
	}
	s := newSandbox(t)
	h, _ := newHost(s.policy())
	if _, err := h.Read(s.path("allowed/public.txt"), 0); err != nil {
		t.Fatalf("a Host without Counters: %v", err)
	}
}

// BenchmarkReadCounters compares Read with and without byte budgets.
func BenchmarkReadCounters(b *testing.B) {
	for _, counted := range []bool{false, true} {
		b.Run(map[bool]string{false: "uncounted", true: "counted"}[counted], func(b *testing.B) {
			s := newSandbox(b)
			h, _ := newHost(s.policy())
			h.Audit = audit.Discard
			if counted {
				h.Counters = &hostops.Counters{MaxRead: 1 << 62, MaxWrite: 1 << 62}
			}
			p := s.path("allowed/public.txt")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Read(p, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCountersOperationCap: every operation that writes a decision line
// counts, allowed or denied, allowed() queries and refused arguments
// included. The operation past the cap is LIMIT_EXCEEDED, is not
// performed, and its one audit line is a deny that says why.
func TestCountersOperationCap(t *testing.T) {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	ops := []struct {
		name string
		op   func(s *sandbox, h *hostops.Host) error
		done func(s *sandbox) bool // whether the operation acted; nil: it only looks
	}{
		{"allowed", func(s *sandbox, h *hostops.Host) error {
			_, err := h.Allowed("read", s.path("allowed/public.txt"))
			return err
		}, nil},
		{"allowed-denied", func(s *sandbox, h *hostops.Host) error {
			_, err := h.Allowed("read", s.path("forbidden/secret"))
			return err
		}, nil},
		{"read", func(s *sandbox, h *hostops.Host) error { _, err := h.Read(s.path("allowed/public.txt"), 0); return err }, nil},
		{"stat-denied", func(s *sandbox, h *hostops.Host) error { _, err := h.Stat(s.path("forbidden/secret")); return err }, nil},
		{"bad-path", func(s *sandbox, h *hostops.Host) error { _, err := h.Stat("relative"); return err }, nil},
		{"write", func(s *sandbox, h *hostops.Host) error {
			return h.Write(s.path("allowed/rw/w.txt"), []byte("x"), hostops.KeepMode)
		}, func(s *sandbox) bool { return exists(s.path("allowed/rw/w.txt")) }},
		{"mkdir", func(s *sandbox, h *hostops.Host) error { return h.Mkdir(s.path("allowed/rw/d"), false) },
			func(s *sandbox) bool { return exists(s.path("allowed/rw/d")) }},
		{"exec", func(s *sandbox, h *hostops.Host) error {
			_, err := h.Exec(context.Background(), []string{"sh", "-c", "echo > " + s.path("allowed/rw/ran")}, hostops.ExecOptions{})
			return err
		}, func(s *sandbox) bool { return exists(s.path("allowed/rw/ran")) }},
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			s, h, mem := countedHost(t, 0, 0)
			const max = 3
			h.Counters = &hostops.Counters{MaxOperations: max}
			for range max {
				if _, err := h.Allowed("read", s.path("allowed/public.txt")); err != nil {
					t.Fatal(err)
				}
			}
			err := tc.op(s, h)
			if errKind(err) != hostops.KindLimitExceeded || !strings.Contains(err.Error(), "operation limit of 3 is exceeded") {
				t.Fatalf("operation past the cap: %v, want LIMIT_EXCEEDED", err)
			}
			if tc.done != nil && tc.done(s) {
				t.Error("the operation past the cap acted")
			}
			ev := mem.Events()
			if len(ev) != max+1 {
				t.Fatalf("%d audit lines, want %d", len(ev), max+1)
			}
			if last := ev[max]; last.Decision != "deny" || !strings.Contains(last.Reason, "operation limit") {
				t.Errorf("line of the operation past the cap = %+v, want a deny saying why", last)
			}
			if h.Counters.Exceeded() == nil || h.Counters.Operations() != max+1 {
				t.Errorf("Exceeded() = %v, Operations() = %d", h.Counters.Exceeded(), h.Counters.Operations())
			}
		})
	}
}
