package hostops_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/hostops"
)

// opCase is one call of an operation that changes the host, on a fresh
// rwSandbox. events are its decision events, "action path decision" with
// paths relative to the sandbox root.
type opCase struct {
	name     string
	op       func(h *hostops.Host, s *sandbox) error
	events   []string
	kind     string // error kind; "" for success
	contains string // part of the error message
	after    func(t *testing.T, s *sandbox)
}

func runOpCases(t *testing.T, cases []opCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := rwSandbox(t)
			h, mem := newHost(s.writePolicy())
			h.MaxWriteBytes = 100
			before, beforeF := tree(t, s.root), tree(t, s.forbidden)
			err := tc.op(h, s)
			var got []string
			for _, e := range mem.Events() {
				got = append(got, e.Action+" "+strings.TrimPrefix(e.Resource, s.root)+" "+e.Decision)
			}
			if !slices.Equal(got, tc.events) {
				t.Errorf("events = %q, want %q", got, tc.events)
			}
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if after := tree(t, s.forbidden); after != beforeF {
					t.Errorf("forbidden tree changed:\n%s\n%s", beforeF, after)
				}
				if tc.after != nil {
					tc.after(t, s)
				}
				noTemps(t, s.root)
				return
			}
			var e *hostops.Error
			if !errors.As(err, &e) || e.Kind != tc.kind || !strings.Contains(e.Message, tc.contains) {
				t.Fatalf("err = %v, want %s containing %q", err, tc.kind, tc.contains)
			}
			if e.Kind == hostops.KindAccessDenied && len(e.Policies) == 0 && !strings.Contains(e.Message, "no policy permits it") {
				t.Errorf("denial names no policy: %v", e)
			}
			if after := tree(t, s.root); after != before {
				t.Errorf("a failed operation changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func fileIs(path, data string) func(t *testing.T, s *sandbox) {
	return func(t *testing.T, s *sandbox) {
		t.Helper()
		got, err := os.ReadFile(s.path(path))
		if err != nil || string(got) != data {
			t.Errorf("%s = %q, %v; want %q", path, got, err, data)
		}
	}
}

func missing(path string) func(t *testing.T, s *sandbox) {
	return func(t *testing.T, s *sandbox) {
		t.Helper()
		if _, err := os.Lstat(s.path(path)); !os.IsNotExist(err) {
			t.Errorf("%s still exists: %v", path, err)
		}
	}
}

func all(fs ...func(t *testing.T, s *sandbox)) func(t *testing.T, s *sandbox) {
	return func(t *testing.T, s *sandbox) {
		for _, f := range fs {
			f(t, s)
		}
	}
}

const rw = "allowed/rw"

func TestAppend(t *testing.T) {
	t.Parallel()
	runOpCases(t, []opCase{
		{name: "existing", op: func(h *hostops.Host, s *sandbox) error { return h.Append(s.path(rw+"/old.txt"), []byte("+new")) },
			events: []string{"write /allowed/rw/old.txt allow"}, after: fileIs(rw+"/old.txt", "old+new")},
		{name: "through-symlink", op: func(h *hostops.Host, s *sandbox) error { return h.Append(s.path(rw+"/link-old"), []byte("!")) },
			events: []string{"write /allowed/rw/old.txt allow"}, after: fileIs(rw+"/old.txt", "old!")},
		{name: "creates", op: func(h *hostops.Host, s *sandbox) error { return h.Append(s.path(rw+"/log"), []byte("one\n")) },
			events: []string{"create /allowed/rw/log allow"}, after: fileIs(rw+"/log", "one\n")},
		{name: "forbidden", op: func(h *hostops.Host, s *sandbox) error { return h.Append(s.path("forbidden/secret"), []byte("x")) },
			events: []string{"write /forbidden/secret deny"}, kind: hostops.KindAccessDenied, contains: "policy no-forbidden"},
		{name: "symlink-to-forbidden", op: func(h *hostops.Host, s *sandbox) error { return h.Append(s.path(rw+"/link-secret"), []byte("x")) },
			events: []string{"write /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "hard-link-to-forbidden", op: func(h *hostops.Host, s *sandbox) error { return h.Append(s.path(rw+"/hard"), []byte("x")) },
			events: []string{"write /allowed/rw/hard allow"}, kind: hostops.KindInvalidArgument, contains: "2 hard links"},
		{name: "fifo", op: func(h *hostops.Host, s *sandbox) error { return h.Append(s.path(rw+"/fifo"), []byte("x")) },
			events: []string{"write /allowed/rw/fifo allow"}, kind: hostops.KindInvalidArgument, contains: "fifo"},
		{name: "too-large", op: func(h *hostops.Host, s *sandbox) error {
			return h.Append(s.path(rw+"/old.txt"), []byte(strings.Repeat("x", 101)))
		}, events: []string{"write /allowed/rw/old.txt allow"}, kind: hostops.KindLimitExceeded},
	})
}

func TestMkdir(t *testing.T) {
	t.Parallel()
	isDir := func(p string) func(t *testing.T, s *sandbox) {
		return func(t *testing.T, s *sandbox) {
			if fi, err := os.Lstat(s.path(p)); err != nil || !fi.IsDir() {
				t.Errorf("%s is not a directory: %v", p, err)
			}
		}
	}
	runOpCases(t, []opCase{
		{name: "new", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path(rw+"/d"), false) },
			events: []string{"mkdir /allowed/rw/d allow"}, after: isDir(rw + "/d")},
		{name: "trailing-slash", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path(rw+"/d/"), false) },
			events: []string{"mkdir /allowed/rw/d allow"}, after: isDir(rw + "/d")},
		{name: "exists", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path(rw+"/dir"), false) },
			events: []string{"mkdir /allowed/rw/dir allow"}, kind: hostops.KindInvalidArgument, contains: "file exists"},
		{name: "exists-with-parents", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path(rw+"/dir"), true) },
			events: []string{"mkdir /allowed/rw/dir allow"}},
		{name: "parents", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path(rw+"/a/b/c"), true) },
			events: []string{"mkdir /allowed/rw/a/b/c allow", "mkdir /allowed/rw/a allow", "mkdir /allowed/rw/a/b allow"},
			after:  isDir(rw + "/a/b/c")},
		{name: "missing-parent", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path(rw+"/a/b"), false) },
			events: []string{"mkdir /allowed/rw/a/b allow"}, kind: hostops.KindNotFound},
		{name: "forbidden", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path("forbidden/d"), false) },
			events: []string{"mkdir /forbidden/d deny"}, kind: hostops.KindAccessDenied},
		{name: "forbidden-parents", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path("forbidden/x/y"), true) },
			events: []string{"mkdir /forbidden/x/y deny"}, kind: hostops.KindAccessDenied},
		{name: "parents-cross-into-forbidden", op: func(h *hostops.Host, s *sandbox) error {
			return h.Mkdir(s.path(rw+"/link-forbidden-dir/x"), true)
		}, events: []string{"mkdir /forbidden/x deny"}, kind: hostops.KindAccessDenied},
		{name: "symlinked-parent-to-forbidden", op: func(h *hostops.Host, s *sandbox) error {
			return h.Mkdir(s.path(rw+"/link-forbidden-dir/x"), false)
		}, events: []string{"mkdir /forbidden/x deny"}, kind: hostops.KindAccessDenied},
		{name: "read-only-area", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path("allowed/d"), false) },
			events: []string{"mkdir /allowed/d deny"}, kind: hostops.KindAccessDenied, contains: "no policy permits it"},
		{name: "dots-with-parents", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path(rw)+"/a/../../x", true) },
			events: []string{"mkdir /allowed/rw/a/../../x deny"}, kind: hostops.KindInvalidArgument, contains: ". or .."},
		{name: "symlink-without-parents", op: func(h *hostops.Host, s *sandbox) error { return h.Mkdir(s.path(rw+"/link-old"), false) },
			events: []string{"mkdir /allowed/rw/link-old allow"}, kind: hostops.KindInvalidArgument, contains: "file exists"},
	})
}

func TestRemove(t *testing.T) {
	t.Parallel()
	runOpCases(t, []opCase{
		{name: "file", op: func(h *hostops.Host, s *sandbox) error { return h.Remove(s.path(rw + "/old.txt")) },
			events: []string{"delete /allowed/rw/old.txt allow"}, after: missing(rw + "/old.txt")},
		{name: "empty-dir", op: func(h *hostops.Host, s *sandbox) error { return h.Remove(s.path(rw + "/dir/")) },
			events: []string{"delete /allowed/rw/dir allow"}, after: missing(rw + "/dir")},
		{name: "symlink-itself", op: func(h *hostops.Host, s *sandbox) error { return h.Remove(s.path(rw + "/link-secret")) },
			events: []string{"delete /allowed/rw/link-secret allow"}, after: all(missing(rw+"/link-secret"), fileIs("forbidden/secret", "TOP SECRET"))},
		{name: "hard-link-name-only", op: func(h *hostops.Host, s *sandbox) error { return h.Remove(s.path(rw + "/hard")) },
			events: []string{"delete /allowed/rw/hard allow"}, after: all(missing(rw+"/hard"), fileIs("forbidden/hard", "hard secret"))},
		{name: "non-empty-dir", op: func(h *hostops.Host, s *sandbox) error { return h.Remove(s.path("allowed/rw")) },
			events: []string{"delete /allowed/rw allow"}, kind: hostops.KindInvalidArgument, contains: "directory not empty"},
		{name: "forbidden", op: func(h *hostops.Host, s *sandbox) error { return h.Remove(s.path("forbidden/secret")) },
			events: []string{"delete /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "through-symlinked-parent", op: func(h *hostops.Host, s *sandbox) error {
			return h.Remove(s.path(rw + "/link-forbidden-dir/secret"))
		}, events: []string{"delete /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "dotdot", op: func(h *hostops.Host, s *sandbox) error { return h.Remove(s.path(rw) + "/../../forbidden/secret") },
			events: []string{"delete /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "missing", op: func(h *hostops.Host, s *sandbox) error { return h.Remove(s.path(rw + "/nope")) },
			events: []string{"delete /allowed/rw/nope allow"}, kind: hostops.KindNotFound},
		{name: "missing-under-forbidden", op: func(h *hostops.Host, s *sandbox) error { return h.Remove(s.path("forbidden/nope")) },
			events: []string{"delete /forbidden/nope deny"}, kind: hostops.KindAccessDenied},
		{name: "file-with-slash", op: func(h *hostops.Host, s *sandbox) error { return h.Remove(s.path(rw+"/old.txt") + "/") },
			events: []string{"delete /allowed/rw/old.txt allow"}, kind: hostops.KindNotFound, contains: "not a directory"},
	})
}

func TestRename(t *testing.T) {
	t.Parallel()
	runOpCases(t, []opCase{
		{name: "to-new-name", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path(rw+"/old.txt"), s.path(rw+"/dir/moved"))
		}, events: []string{"rename /allowed/rw/old.txt allow", "create /allowed/rw/dir/moved allow"},
			after: all(missing(rw+"/old.txt"), fileIs(rw+"/dir/moved", "old"))},
		{name: "over-existing", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path(rw+"/old.txt"), s.path(rw+"/old2.txt"))
		}, events: []string{"rename /allowed/rw/old.txt allow", "write /allowed/rw/old2.txt allow"},
			after: all(missing(rw+"/old.txt"), fileIs(rw+"/old2.txt", "old"))},
		{name: "symlink-itself", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path(rw+"/link-secret"), s.path(rw+"/link2"))
		}, events: []string{"rename /allowed/rw/link-secret allow", "create /allowed/rw/link2 allow"},
			after: all(missing(rw+"/link-secret"), fileIs("forbidden/secret", "TOP SECRET"))},
		{name: "dst-symlink-replaced-not-followed", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path(rw+"/old.txt"), s.path(rw+"/link-secret"))
		}, events: []string{"rename /allowed/rw/old.txt allow", "write /allowed/rw/link-secret allow"},
			after: all(fileIs(rw+"/link-secret", "old"), fileIs("forbidden/secret", "TOP SECRET"))},
		{name: "source-forbidden", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path("forbidden/secret"), s.path(rw+"/stolen"))
		}, events: []string{"rename /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "destination-forbidden", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path(rw+"/old.txt"), s.path("forbidden/planted"))
		}, events: []string{"rename /allowed/rw/old.txt allow", "create /forbidden/planted deny"}, kind: hostops.KindAccessDenied},
		{name: "destination-over-forbidden", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path(rw+"/old.txt"), s.path("forbidden/secret"))
		}, events: []string{"rename /allowed/rw/old.txt allow", "write /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "destination-through-symlinked-parent", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path(rw+"/old.txt"), s.path(rw+"/link-forbidden-dir/x"))
		}, events: []string{"rename /allowed/rw/old.txt allow", "create /forbidden/x deny"}, kind: hostops.KindAccessDenied},
		{name: "source-read-only-area", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path("allowed/public.txt"), s.path(rw+"/p"))
		}, events: []string{"rename /allowed/public.txt deny"}, kind: hostops.KindAccessDenied},
		{name: "source-missing", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path(rw+"/nope"), s.path(rw+"/p"))
		}, events: []string{"rename /allowed/rw/nope allow"}, kind: hostops.KindNotFound},
		{name: "dir-into-itself", op: func(h *hostops.Host, s *sandbox) error {
			return h.Rename(s.path(rw+"/dir"), s.path(rw+"/dir/in"))
		}, events: []string{"rename /allowed/rw/dir allow", "create /allowed/rw/dir/in allow"}, kind: hostops.KindInvalidArgument},
	})
}

func TestChmod(t *testing.T) {
	t.Parallel()
	modeIs := func(p string, m os.FileMode) func(t *testing.T, s *sandbox) {
		return func(t *testing.T, s *sandbox) {
			if fi, err := os.Stat(s.path(p)); err != nil || fi.Mode().Perm() != m {
				t.Errorf("%s mode = %v, %v; want %v", p, fi.Mode().Perm(), err, m)
			}
		}
	}
	runOpCases(t, []opCase{
		{name: "file", op: func(h *hostops.Host, s *sandbox) error { return h.Chmod(s.path(rw+"/old.txt"), 0o600) },
			events: []string{"chmod /allowed/rw/old.txt allow"}, after: modeIs(rw+"/old.txt", 0o600)},
		{name: "dir", op: func(h *hostops.Host, s *sandbox) error { return h.Chmod(s.path(rw+"/dir"), 0o700) },
			events: []string{"chmod /allowed/rw/dir allow"}, after: modeIs(rw+"/dir", 0o700)},
		{name: "through-symlink", op: func(h *hostops.Host, s *sandbox) error { return h.Chmod(s.path(rw+"/link-old"), 0o604) },
			events: []string{"chmod /allowed/rw/old.txt allow"}, after: modeIs(rw+"/old.txt", 0o604)},
		{name: "symlink-to-forbidden", op: func(h *hostops.Host, s *sandbox) error { return h.Chmod(s.path(rw+"/link-secret"), 0o666) },
			events: []string{"chmod /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "forbidden", op: func(h *hostops.Host, s *sandbox) error { return h.Chmod(s.path("forbidden/secret"), 0o666) },
			events: []string{"chmod /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "hard-link", op: func(h *hostops.Host, s *sandbox) error { return h.Chmod(s.path(rw+"/hard"), 0o666) },
			events: []string{"chmod /allowed/rw/hard allow"}, kind: hostops.KindInvalidArgument, contains: "hard links"},
		{name: "fifo", op: func(h *hostops.Host, s *sandbox) error { return h.Chmod(s.path(rw+"/fifo"), 0o666) },
			events: []string{"chmod /allowed/rw/fifo allow"}, kind: hostops.KindInvalidArgument, contains: "fifo"},
		{name: "setuid", op: func(h *hostops.Host, s *sandbox) error { return h.Chmod(s.path(rw+"/old.txt"), 0o4755) },
			events: []string{"chmod /allowed/rw/old.txt deny"}, kind: hostops.KindInvalidArgument, contains: "0o777"},
		{name: "sticky", op: func(h *hostops.Host, s *sandbox) error { return h.Chmod(s.path(rw+"/dir"), 0o1777) },
			events: []string{"chmod /allowed/rw/dir deny"}, kind: hostops.KindInvalidArgument},
	})
}

func TestCopy(t *testing.T) {
	t.Parallel()
	runOpCases(t, []opCase{
		{name: "to-new", op: func(h *hostops.Host, s *sandbox) error {
			return h.Copy(s.path("allowed/public.txt"), s.path(rw+"/copy"))
		}, events: []string{"read /allowed/public.txt allow", "create /allowed/rw/copy allow"}, after: fileIs(rw+"/copy", "public data\n")},
		{name: "over-existing", op: func(h *hostops.Host, s *sandbox) error {
			return h.Copy(s.path("allowed/public.txt"), s.path(rw+"/old.txt"))
		}, events: []string{"read /allowed/public.txt allow", "write /allowed/rw/old.txt allow"}, after: fileIs(rw+"/old.txt", "public data\n")},
		{name: "source-forbidden", op: func(h *hostops.Host, s *sandbox) error {
			return h.Copy(s.path("forbidden/secret"), s.path(rw+"/stolen"))
		}, events: []string{"read /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "source-symlink-to-forbidden", op: func(h *hostops.Host, s *sandbox) error {
			return h.Copy(s.path(rw+"/link-secret"), s.path(rw+"/stolen"))
		}, events: []string{"read /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "destination-forbidden", op: func(h *hostops.Host, s *sandbox) error {
			return h.Copy(s.path("allowed/public.txt"), s.path("forbidden/secret"))
		}, events: []string{"read /allowed/public.txt allow", "write /forbidden/secret deny"}, kind: hostops.KindAccessDenied},
		{name: "destination-read-only", op: func(h *hostops.Host, s *sandbox) error {
			return h.Copy(s.path(rw+"/old.txt"), s.path("allowed/public.txt"))
		}, events: []string{"read /allowed/rw/old.txt allow", "write /allowed/public.txt deny"}, kind: hostops.KindAccessDenied},
		{name: "source-fifo", op: func(h *hostops.Host, s *sandbox) error {
			return h.Copy(s.path(rw+"/fifo"), s.path(rw+"/x"))
		}, events: []string{"read /allowed/rw/fifo allow"}, kind: hostops.KindInvalidArgument},
	})
}

// TestDryRun: every operation that changes the host pins, authorizes and
// audits, reports success, and changes nothing.
func TestDryRun(t *testing.T) {
	t.Parallel()
	s := rwSandbox(t)
	h, mem := newHost(s.writePolicy())
	h.DryRun = true
	p := func(rel string) string { return s.path(rw + "/" + rel) }
	before := tree(t, s.root)
	ops := map[string]func() error{
		"write-new":      func() error { return h.Write(p("new"), []byte("x"), 0o644) },
		"write-existing": func() error { return h.Write(p("old.txt"), []byte("x"), hostops.KeepMode) },
		"append":         func() error { return h.Append(p("old.txt"), []byte("x")) },
		"mkdir":          func() error { return h.Mkdir(p("d"), false) },
		"mkdir-parents":  func() error { return h.Mkdir(p("a/b/c"), true) },
		"remove":         func() error { return h.Remove(p("old.txt")) },
		"rename":         func() error { return h.Rename(p("old.txt"), p("moved")) },
		"chmod":          func() error { return h.Chmod(p("old.txt"), 0o600) },
		"copy":           func() error { return h.Copy(p("old.txt"), p("copy")) },
	}
	for name, op := range ops {
		n := len(mem.Events())
		if err := op(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(mem.Events()) == n {
			t.Errorf("%s: not audited", name)
		}
	}
	if after := tree(t, s.root); after != before {
		t.Errorf("a dry run changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// A denial is still a denial.
	if err := h.Write(s.path("forbidden/secret"), []byte("x"), 0o644); err == nil {
		t.Error("dry run allowed a forbidden write")
	}
}
