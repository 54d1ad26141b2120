package hostops_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/hostops"
)

func TestLinesTailGrep(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	log := s.path("allowed/log")
	mustWrite(t, log, "one\ntwo ERR\nthree\nfour ERR\nfive", 0o644)
	mustWrite(t, s.path("allowed/nl"), "a\nb\n", 0o644)
	mustWrite(t, s.path("allowed/empty.txt"), "", 0o644)
	big := strings.Repeat("x\n", 100_000) + "last\n"
	mustWrite(t, s.path("allowed/big"), big, 0o644)
	h, mem := newHost(s.policy())
	tests := []struct {
		name string
		op   func() (any, error)
		want any
		kind string
	}{
		{"lines", func() (any, error) { return h.Lines(log, 0) }, []string{"one", "two ERR", "three", "four ERR", "five"}, ""},
		{"lines-max", func() (any, error) { return h.Lines(log, 2) }, []string{"one", "two ERR"}, ""},
		{"lines-final-newline", func() (any, error) { return h.Lines(s.path("allowed/nl"), 0) }, []string{"a", "b"}, ""},
		{"lines-empty", func() (any, error) { return h.Lines(s.path("allowed/empty.txt"), 0) }, []string{}, ""},
		{"lines-forbidden", func() (any, error) { return h.Lines(s.path("forbidden/secret"), 0) }, nil, hostops.KindAccessDenied},
		{"lines-fifo", func() (any, error) { return h.Lines(s.path("allowed/fifo"), 0) }, nil, hostops.KindInvalidArgument},
		{"tail", func() (any, error) { return h.Tail(context.Background(), log, 2) }, []string{"four ERR", "five"}, ""},
		{"tail-more-than-file", func() (any, error) { return h.Tail(context.Background(), log, 9) }, []string{"one", "two ERR", "three", "four ERR", "five"}, ""},
		{"tail-final-newline", func() (any, error) { return h.Tail(context.Background(), s.path("allowed/nl"), 1) }, []string{"b"}, ""},
		{"tail-empty", func() (any, error) { return h.Tail(context.Background(), s.path("allowed/empty.txt"), 3) }, []string{}, ""},
		{"tail-across-chunks", func() (any, error) { return h.Tail(context.Background(), s.path("allowed/big"), 3) }, []string{"x", "x", "last"}, ""},
		{"tail-forbidden", func() (any, error) { return h.Tail(context.Background(), s.path("allowed/link-secret"), 1) }, nil, hostops.KindAccessDenied},
		{"grep", func() (any, error) { return h.Grep(log, regexp.MustCompile(`ERR$`), 0) },
			[]hostops.Match{{Line: 2, Text: "two ERR"}, {Line: 4, Text: "four ERR"}}, ""},
		{"grep-cap", func() (any, error) { return h.Grep(log, regexp.MustCompile(`ERR`), 1) },
			[]hostops.Match{{Line: 2, Text: "two ERR"}}, ""},
		{"grep-forbidden", func() (any, error) { return h.Grep(s.path("forbidden/secret"), regexp.MustCompile(`.`), 0) }, nil, hostops.KindAccessDenied},
	}
	for _, tc := range tests {
		n := len(mem.Events())
		got, err := tc.op()
		if len(mem.Events()) != n+1 {
			t.Errorf("%s: %d audit events, want 1", tc.name, len(mem.Events())-n)
		}
		if tc.kind != "" {
			var e *hostops.Error
			if !errors.As(err, &e) || e.Kind != tc.kind {
				t.Errorf("%s: err = %v, want %s", tc.name, err, tc.kind)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !equalAny(got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.name, got, tc.want)
		}
	}
	// Caps: a file over the read cap is LIMIT_EXCEEDED for lines, but its
	// first lines and its tail are within reach.
	h.MaxReadBytes = 1000
	if _, err := h.Lines(s.path("allowed/big"), 0); !isKind(err, hostops.KindLimitExceeded) {
		t.Errorf("lines over the cap: %v", err)
	}
	if got, err := h.Lines(s.path("allowed/big"), 2); err != nil || len(got) != 2 {
		t.Errorf("first lines of a big file: %v, %v", got, err)
	}
	if got, err := h.Tail(context.Background(), s.path("allowed/big"), 2); err != nil || !slices.Equal(got, []string{"x", "last"}) {
		t.Errorf("tail of a big file: %v, %v", got, err)
	}
	if _, err := h.Tail(context.Background(), s.path("allowed/big"), 1000); !isKind(err, hostops.KindLimitExceeded) {
		t.Errorf("tail over the cap: %v", err)
	}
}

func equalAny(a, b any) bool {
	switch a := a.(type) {
	case []string:
		return slices.Equal(a, b.([]string))
	case []hostops.Match:
		return slices.Equal(a, b.([]hostops.Match))
	}
	return false
}

func isKind(err error, kind string) bool {
	var e *hostops.Error
	return errors.As(err, &e) && e.Kind == kind
}

func TestGlob(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	mustWrite(t, s.path("allowed/sub/a.log"), "", 0o644)
	mustWrite(t, s.path("allowed/.hidden.log"), "", 0o644)
	mustWrite(t, s.path("forbidden/sub/a.log"), "", 0o644)
	tests := []struct {
		name    string
		pattern string
		want    []string
		lists   []string // directories listed, relative to root, "!" for a denial
		kind    string
	}{
		{"star", s.root + "/allowed/*.txt", []string{s.root + "/allowed/public.txt"}, []string{"/allowed"}, ""},
		{"hidden-needs-dot", s.root + "/allowed/.*.log", []string{s.root + "/allowed/.hidden.log"}, []string{"/allowed"}, ""},
		{"skips-denied", s.root + "/*/sub/*.log", []string{s.root + "/allowed/sub/a.log"},
			[]string{"", "/allowed", "/allowed/sub", "!/forbidden"}, ""},
		{"through-symlinks", s.root + "/allowed/linkdir-*/*",
			[]string{s.root + "/allowed/linkdir-sub/a.log", s.root + "/allowed/linkdir-sub/nested.txt"},
			[]string{"/allowed", "!/forbidden", "/allowed/sub"}, ""},
		{"denied-start", s.root + "/forbidden/*", nil, []string{"!/forbidden"}, hostops.KindAccessDenied},
		{"bad-pattern", s.root + "/allowed/[", nil, []string{"!/allowed/["}, hostops.KindInvalidArgument},
		{"dotdot-after-wildcard", s.root + "/allowed/*/../x", nil, []string{"!/allowed/*/../x"}, hostops.KindInvalidArgument},
		{"relative", "allowed/*", nil, []string{"!allowed/*"}, hostops.KindInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, mem := newHost(s.policy(s.root))
			got, err := h.Glob(tc.pattern)
			var lists []string
			for _, e := range mem.Events() {
				if e.Action != "list" {
					t.Errorf("action %s", e.Action)
				}
				r := strings.TrimPrefix(e.Resource, s.root)
				if e.Decision == "deny" {
					r = "!" + r
				}
				lists = append(lists, r)
			}
			slices.Sort(lists)
			want := slices.Clone(tc.lists)
			slices.Sort(want)
			if !slices.Equal(lists, want) {
				t.Errorf("listed %q, want %q", lists, want)
			}
			if tc.kind != "" {
				if !isKind(err, tc.kind) {
					t.Fatalf("err = %v, want %s", err, tc.kind)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Glob = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestExists(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	h, mem := newHost(s.policy())
	for _, tc := range []struct {
		path string
		want bool
		kind string
	}{
		{s.path("allowed/public.txt"), true, ""},
		{s.path("allowed/missing"), false, ""},
		{s.path("allowed/dangling-allowed"), false, ""},
		{s.path("forbidden/secret"), false, hostops.KindAccessDenied},
		{s.path("forbidden/missing"), false, hostops.KindAccessDenied},
		{s.path("allowed/dangling-forbidden"), false, hostops.KindAccessDenied},
	} {
		n := len(mem.Events())
		got, err := h.Exists(tc.path)
		if len(mem.Events()) != n+1 || mem.Events()[n].Action != "stat" {
			t.Errorf("%s: want one stat decision", tc.path)
		}
		if tc.kind != "" {
			if !isKind(err, tc.kind) {
				t.Errorf("Exists(%s) = %v, %v; want %s", tc.path, got, err, tc.kind)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Exists(%s) = %v, %v; want %v", tc.path, got, err, tc.want)
		}
	}
}

// TestNoDescriptorLeakWrites runs every operation that changes the host,
// allowed and refused, many times, and checks the descriptors held. It
// must not run in parallel with other tests.
func TestNoDescriptorLeakWrites(t *testing.T) {
	s := rwSandbox(t)
	h, _ := newHost(s.writePolicy())
	h.MaxWriteBytes = 8
	p := func(rel string) string { return s.path(rw + "/" + rel) }
	run := func() {
		for _, path := range []string{p("f"), p("old.txt"), p("link-secret"), p("dangling"), p("dangling-rw"), p("fifo"),
			p("hard"), p("dir"), p("nodir/x"), s.path("forbidden/secret"), "relative", p("f/")} {
			h.Write(path, []byte("x"), 0o644)
			h.Write(path, []byte("too long data"), 0o644)
			h.Append(path, []byte("x"))
			h.Chmod(path, 0o644)
			h.Copy(p("old.txt"), path)
			h.Rename(path, p("moved"))
			h.Rename(p("moved"), path)
			h.Mkdir(path+"-d", false)
			h.Mkdir(path+"-p/q", true)
			h.Remove(path + "-p/q")
			h.Remove(path + "-p")
			h.Remove(path + "-d")
			h.Lines(path, 0)
			h.Tail(context.Background(), path, 2)
			h.Glob(path + "*")
			h.Exists(path)
		}
		os.Remove(p("f"))
		os.WriteFile(p("old.txt"), []byte("old"), 0o640)
	}
	for _, mode := range []string{"tmpfile", "named"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "named" {
				hostops.WithoutTmpfile(t)
			}
			run()
			before := openFDs(t)
			for range 3 {
				run()
			}
			if after := openFDs(t); after != before {
				t.Fatalf("%d descriptors open before, %d after", before, after)
			}
			noTemps(t, s.root)
		})
	}
}
