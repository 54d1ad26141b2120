package hostops

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func pinPath(t *testing.T, p string) (*pinned, error) {
	t.Helper()
	fd, err := openPath(unix.AT_FDCWD, p)
	if err != nil {
		t.Fatal(err)
	}
	return newPinned(fd)
}

func tempDir(t *testing.T) string {
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestNameOfPinned(t *testing.T) {
	t.Parallel()
	dir := tempDir(t)
	write := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("plain", func(t *testing.T) {
		p := write("plain")
		pin, err := pinPath(t, p)
		if err != nil || pin.path != p {
			t.Fatalf("newPinned = %v, %v; want %s", pin, err, p)
		}
		pin.close()
	})
	t.Run("name-ending-in-deleted", func(t *testing.T) {
		p := write("a (deleted)")
		pin, err := pinPath(t, p)
		if err != nil || pin.path != p {
			t.Fatalf("newPinned = %v, %v; want %s", pin, err, p)
		}
		pin.close()
	})
	t.Run("unlinked", func(t *testing.T) {
		p := write("gone")
		fd, err := openPath(unix.AT_FDCWD, p)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		_, err = newPinned(fd)
		var del *deletedError
		if !errors.As(err, &del) || del.Path != p {
			t.Fatalf("newPinned = %v, want deletedError for %s", err, p)
		}
	})
	t.Run("unlinked-name-of-hard-linked-file", func(t *testing.T) {
		// The object lives on under another name, but the name it was
		// pinned by is gone: it is treated as not found.
		p := write("first")
		if err := os.Link(p, filepath.Join(dir, "second")); err != nil {
			t.Fatal(err)
		}
		fd, err := openPath(unix.AT_FDCWD, p)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		_, err = newPinned(fd)
		var del *deletedError
		if !errors.As(err, &del) || del.Path != p {
			t.Fatalf("newPinned = %v, want deletedError for %s", err, p)
		}
	})
	t.Run("renamed-before-naming", func(t *testing.T) {
		p := write("before")
		fd, err := openPath(unix.AT_FDCWD, p)
		if err != nil {
			t.Fatal(err)
		}
		after := filepath.Join(dir, "after")
		if err := os.Rename(p, after); err != nil {
			t.Fatal(err)
		}
		pin, err := newPinned(fd)
		if err != nil || pin.path != after {
			t.Fatalf("newPinned = %v, %v; want %s", pin, err, after)
		}
		pin.close()
	})
}

func TestReopenChecksObject(t *testing.T) {
	t.Parallel()
	dir := tempDir(t)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	pin, err := pinPath(t, p)
	if err != nil {
		t.Fatal(err)
	}
	defer pin.close()
	fd, err := pin.reopen(unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	pin.st.Ino++ // as if the descriptor held another object
	if fd, err := pin.reopen(unix.O_RDONLY); err != errSwapped {
		unix.Close(fd)
		t.Fatalf("reopen = %v, want errSwapped", err)
	}
}

func TestSplitAndUnreached(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path      string
		comps     []string
		unreached []string
	}{
		{path: "/", comps: nil, unreached: nil},
		{path: "/a/b", comps: []string{"a", "b"}, unreached: []string{"a", "b"}},
		{path: "//a//./b/", comps: []string{"a", ".", "b", "."}, unreached: []string{"a", "b"}},
		{path: "/missing/../../etc/shadow", comps: []string{"missing", "..", "..", "etc", "shadow"}, unreached: []string{"missing"}},
		{path: "/../x", comps: []string{"..", "x"}, unreached: nil},
		{path: "a/b/..", comps: []string{"a", "b", ".."}, unreached: []string{"a", "b"}},
	}
	for _, tc := range tests {
		comps := split(tc.path)
		if !slices.Equal(comps, tc.comps) {
			t.Errorf("split(%q) = %q, want %q", tc.path, comps, tc.comps)
		}
		if got := unreached(comps); !slices.Equal(got, tc.unreached) {
			t.Errorf("unreached(%q) = %q, want %q", comps, got, tc.unreached)
		}
	}
	if got := join("/", []string{"a", "b"}); got != "/a/b" {
		t.Errorf("join = %q", got)
	}
	if got := join("/x", nil); got != "/x" {
		t.Errorf("join = %q", got)
	}
}
