package hostops_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/hostops"
)

func TestList(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	a, f := s.allowed, s.forbidden
	mixed := s.path("allowed/mixed")
	mustMkdir(t, mixed+"/a-dir")
	mustWrite(t, mixed+"/b.txt", "abc", 0o644)
	if err := os.Symlink("b.txt", mixed+"/c-link"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(mixed+"/d-fifo", 0o644); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, mixed+"/B-upper", "", 0o644)
	var dirSize int64
	if fi, err := os.Lstat(mixed + "/a-dir"); err == nil {
		dirSize = fi.Size()
	}
	tests := []struct {
		name    string
		path    string
		entries []hostops.Entry
		want
	}{
		{name: "mixed-types-sorted-by-name", path: mixed,
			entries: []hostops.Entry{
				{Name: "B-upper", Type: "file", Size: 0},
				{Name: "a-dir", Type: "dir", Size: dirSize},
				{Name: "b.txt", Type: "file", Size: 3},
				{Name: "c-link", Type: "symlink", Size: 5},
				{Name: "d-fifo", Type: "other", Size: 0},
			},
			want: want{resource: mixed, decision: "allow"}},
		{name: "empty-directory", path: a + "/empty", entries: []hostops.Entry{},
			want: want{resource: a + "/empty", decision: "allow"}},
		{name: "through-symlink-to-allowed", path: a + "/linkdir-sub",
			entries: []hostops.Entry{{Name: "nested.txt", Type: "file", Size: 6}},
			want:    want{resource: a + "/sub", decision: "allow"}},
		{name: "forbidden-directory", path: f,
			want: want{kind: hostops.KindAccessDenied, resource: f, decision: "deny",
				msg: `list ` + f + ` denied for User::"agent-7" in Role::"logs" (policy no-forbidden)`, policies: []string{"no-forbidden"}}},
		{name: "through-symlink-to-forbidden", path: a + "/linkdir-forbidden",
			want: want{kind: hostops.KindAccessDenied, resource: f, decision: "deny"}},
		{name: "dotdot-escape", path: a + "/../forbidden",
			want: want{kind: hostops.KindAccessDenied, resource: f, decision: "deny"}},
		{name: "file", path: a + "/public.txt",
			want: want{kind: hostops.KindInvalidArgument, resource: a + "/public.txt", decision: "allow",
				msg: "list " + a + "/public.txt: not a directory"}},
		{name: "fifo", path: a + "/fifo",
			want: want{kind: hostops.KindInvalidArgument, resource: a + "/fifo", decision: "allow"}},
		{name: "missing-under-allowed", path: a + "/missing",
			want: want{kind: hostops.KindNotFound, resource: a + "/missing", decision: "allow",
				msg: "list " + a + "/missing: no such file or directory"}},
		{name: "missing-under-forbidden", path: f + "/missing",
			want: want{kind: hostops.KindAccessDenied, resource: f + "/missing", decision: "deny"}},
		{name: "relative-path", path: ".",
			want: want{kind: hostops.KindInvalidArgument, resource: ".", decision: "deny",
				msg: `list: path must be absolute, got "."`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, mem := newHost(s.policy())
			var got []hostops.Entry
			expect(t, mem, "list", func() (err error) {
				got, err = h.List(tc.path)
				return err
			}, tc.want)
			if tc.kind == "" && !slices.Equal(got, tc.entries) {
				t.Errorf("List = %+v\nwant %+v", got, tc.entries)
			}
		})
	}
}

func TestListCap(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	dir := s.path("allowed/many")
	mustMkdir(t, dir)
	const n = 3000 // more than one getdents buffer
	for i := range n {
		mustWrite(t, fmt.Sprintf("%s/f%05d", dir, i), "", 0o644)
	}
	for _, tc := range []struct {
		name string
		cap  int
		kind string
	}{
		{name: "default-cap", cap: 0},
		{name: "at-cap", cap: n},
		{name: "over-cap", cap: n - 1, kind: hostops.KindLimitExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newHost(s.policy())
			h.MaxListEntries = tc.cap
			got, err := h.List(dir)
			if tc.kind != "" {
				var e *hostops.Error
				if !errors.As(err, &e) || e.Kind != tc.kind || e.Message != "list "+dir+": more than "+strconv.Itoa(tc.cap)+" entries" {
					t.Fatalf("List = %v, want %s", err, tc.kind)
				}
				return
			}
			if err != nil || len(got) != n {
				t.Fatalf("List = %d entries, %v; want %d", len(got), err, n)
			}
			if got[0].Name != "f00000" || got[n-1].Name != fmt.Sprintf("f%05d", n-1) ||
				!slices.IsSortedFunc(got, func(a, b hostops.Entry) int { return compare(a.Name, b.Name) }) {
				t.Errorf("entries not sorted by name")
			}
		})
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
