package hostops

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNameOfWalked checks that naming a descriptor opened by a path
// accepts that path without looking it up again only when the kernel names
// the object by exactly that path, and otherwise names it as newPinned
// does: by its real name, or not at all.
func TestNameOfWalked(t *testing.T) {
	t.Parallel()
	dir := tempDir(t)
	write := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	open := func(p string) int {
		fd, err := openPath(unix.AT_FDCWD, p)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	wantName := func(t *testing.T, fd int, walked, want string) {
		t.Helper()
		pin, err := newPinnedWalked(fd, walked)
		if err != nil {
			t.Fatalf("newPinnedWalked(%q) = %v, want %s", walked, err, want)
		}
		defer pin.close()
		if pin.path != want {
			t.Fatalf("newPinnedWalked(%q) named %s, want %s", walked, pin.path, want)
		}
	}
	wantDeleted := func(t *testing.T, fd int, walked, want string) {
		t.Helper()
		pin, err := newPinnedWalked(fd, walked)
		var del *deletedError
		if !errors.As(err, &del) || del.Path != want {
			if pin != nil {
				pin.close()
			}
			t.Fatalf("newPinnedWalked(%q) = %v, %v; want deletedError for %s", walked, pin, err, want)
		}
	}
	t.Run("walked-is-the-name", func(t *testing.T) {
		p := write("plain")
		wantName(t, open(p), p, p)
	})
	t.Run("walked-through-symlink", func(t *testing.T) {
		p := write("target")
		link := filepath.Join(dir, "link")
		if err := os.Symlink("target", link); err != nil {
			t.Fatal(err)
		}
		wantName(t, open(link), link, p)
	})
	t.Run("walked-with-dots", func(t *testing.T) {
		p := write("d1/f")
		walked := dir + "/d1/./../d1/f"
		wantName(t, open(walked), walked, p)
	})
	t.Run("renamed-after-walk", func(t *testing.T) {
		p := write("before")
		fd := open(p)
		after := filepath.Join(dir, "after")
		if err := os.Rename(p, after); err != nil {
			t.Fatal(err)
		}
		wantName(t, fd, p, after)
	})
	t.Run("directory-exchanged-after-walk", func(t *testing.T) {
		// The walk found the file in the directory then named a/; by the
		// time it is named, that directory is b/: its real name is used,
		// not the path walked.
		pa, pb := write("xa/f"), write("xb/f")
		fd := open(pa)
		err := unix.Renameat2(unix.AT_FDCWD, filepath.Dir(pa), unix.AT_FDCWD, filepath.Dir(pb), unix.RENAME_EXCHANGE)
		if errors.Is(err, unix.EINVAL) {
			unix.Close(fd)
			t.Skip("file system cannot exchange names")
		} else if err != nil {
			t.Fatal(err)
		}
		wantName(t, fd, pa, pb)
	})
	t.Run("unlinked", func(t *testing.T) {
		p := write("gone")
		fd := open(p)
		os.Remove(p)
		wantDeleted(t, fd, p, p)
	})
	t.Run("unlinked-walked-as-deleted-name", func(t *testing.T) {
		// The kernel names the unlinked file "<dir>/gone2 (deleted)"; a
		// path walked with that very text must not be taken as its name.
		p := write("gone2")
		fd := open(p)
		os.Remove(p)
		wantDeleted(t, fd, p+deletedSuffix, p)
	})
	t.Run("name-ending-in-deleted", func(t *testing.T) {
		p := write("b (deleted)")
		wantName(t, open(p), p, p)
	})
	t.Run("not-walked", func(t *testing.T) {
		p := write("other")
		wantName(t, open(p), "", p)
	})
	t.Run("long-name", func(t *testing.T) {
		// Longer than the first buffer the name is read into.
		sub := dir
		for range 6 {
			sub = filepath.Join(sub, "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789")
		}
		p := filepath.Join(sub, "f")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if len(p) <= nameBuf {
			t.Fatalf("path of %d bytes is not longer than %d", len(p), nameBuf)
		}
		wantName(t, open(p), p, p)
		wantName(t, open(p), "", p)
	})
}

// TestProcFDDir checks that the cached /proc/self/fd descriptor is on
// procfs and close-on-exec.
func TestProcFDDir(t *testing.T) {
	t.Parallel()
	dir := procFDDir()
	if dir < 0 {
		t.Skip("/proc/self/fd is not available")
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(dir, &fs); err != nil || fs.Type != unix.PROC_SUPER_MAGIC {
		t.Fatalf("fstatfs = %v, type %#x; want procfs", err, fs.Type)
	}
	flags, err := unix.FcntlInt(uintptr(dir), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("F_GETFD = %#x, %v; want FD_CLOEXEC", flags, err)
	}
	if procFDDir() != dir {
		t.Fatal("procFDDir opened a second descriptor")
	}
}
