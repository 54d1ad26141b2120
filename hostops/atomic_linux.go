//go:build linux

package hostops

// Atomic replacement of a name: the new content goes to an unnamed file
// (O_TMPFILE) in the pinned directory, is flushed, and only then gets a
// name. A writer killed at any point before that leaves nothing behind:
// the kernel frees an unnamed file with its last descriptor.
//
// A free name is taken with one linkat, which fails if the name appeared
// meanwhile. Replacing an existing name needs rename, and rename needs a
// name to move: the file is linked to a temporary name (TempPrefix and 24
// random hex digits) and renamed over the target in the next syscall. A
// writer killed between those two syscalls leaves the temporary name; that
// window is two syscalls long. Where the file system has no O_TMPFILE, the
// temporary name is created first (O_CREAT|O_EXCL) and removed on every
// error path, but a writer killed while it writes leaves it.

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// TempPrefix starts the name of every temporary file hostops leaves in a
// directory while it replaces a file.
const TempPrefix = ".keyhole-tmp-"

// noTmpfile is set in tests to take the named-file path everywhere.
var noTmpfile atomic.Bool

// tempName returns a fresh unpredictable temporary name.
func tempName() string {
	var b [12]byte
	rand.Read(b[:])
	return TempPrefix + hex.EncodeToString(b[:])
}

// newContent is a file being written in a pinned directory: unnamed
// (O_TMPFILE) when name is "".
type newContent struct {
	f    *os.File
	dir  *pinned
	name string
}

// create opens the new file in d.
func createIn(d *pinned) (*newContent, error) {
	if !noTmpfile.Load() {
		fd, err := retry(func() (int, error) {
			return unix.Openat(d.fd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
		})
		switch err {
		case nil:
			return &newContent{f: os.NewFile(uintptr(fd), "tmpfile"), dir: d}, nil
		case unix.EOPNOTSUPP, unix.EISDIR, unix.EINVAL, unix.ENOENT:
			// No O_TMPFILE here: fall back to a named file.
		default:
			return nil, err
		}
	}
	for i := 0; ; i++ {
		name := tempName()
		fd, err := retry(func() (int, error) {
			return unix.Openat(d.fd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		})
		if err == unix.EEXIST && i < 8 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &newContent{f: os.NewFile(uintptr(fd), name), dir: d, name: name}, nil
	}
}

// abort closes the new file and removes its name, if it has one.
func (c *newContent) abort() {
	c.f.Close()
	if c.name != "" {
		unix.Unlinkat(c.dir.fd, c.name, 0)
	}
}

// fill writes data, sets the permission bits (and, when owner is set, the
// owner and group, as far as this process may), and flushes the file.
func (c *newContent) fill(data []byte, perm uint32, owner *unix.Stat_t) error {
	for len(data) > 0 {
		n, err := c.f.Write(data)
		if err != nil {
			return unwrapPathError(err)
		}
		data = data[n:]
	}
	return c.finish(perm, owner)
}

// finish sets the permission bits of the written file (and, when owner is
// set, the owner and group, as far as this process may), and flushes it.
func (c *newContent) finish(perm uint32, owner *unix.Stat_t) error {
	fd := int(c.f.Fd())
	if owner != nil {
		// Keep the replaced file's owner; a process that may not give files
		// away keeps its own, as any editor does.
		if err := unix.Fchown(fd, int(owner.Uid), int(owner.Gid)); err != nil && err != unix.EPERM {
			return err
		}
	}
	if err := unix.Fchmod(fd, perm); err != nil {
		return err
	}
	return unix.Fsync(fd)
}

// link gives the new file a name: the temporary one it needs to be renamed
// from (unnamed files only), or, with name set, that free name itself.
func (c *newContent) link(name string) error {
	proc := procSelfFD + strconv.Itoa(int(c.f.Fd()))
	if name != "" {
		return unix.Linkat(unix.AT_FDCWD, proc, c.dir.fd, name, unix.AT_SYMLINK_FOLLOW)
	}
	for i := 0; ; i++ {
		tmp := tempName()
		err := unix.Linkat(unix.AT_FDCWD, proc, c.dir.fd, tmp, unix.AT_SYMLINK_FOLLOW)
		if err == unix.EEXIST && i < 8 {
			continue
		}
		if err == nil {
			c.name = tmp
		}
		return err
	}
}

// replaceEntry writes data as the new content of the entry e: a free name
// is taken only if still free, a held one is replaced only if it still
// holds the authorized object. Either way the name holds the old content
// or the new, never part of it.
func replaceEntry(e *entry, data []byte, perm uint32, owner *unix.Stat_t) error {
	c, err := createIn(e.dir)
	if err != nil {
		return err
	}
	if err := c.fill(data, perm, owner); err != nil {
		c.abort()
		return err
	}
	return commitContent(e, c)
}

// commitContent gives the filled new content c the entry e's name, as
// replaceEntry does; c is closed (and its temporary name gone) whatever
// happens.
func commitContent(e *entry, c *newContent) error {
	var err error
	if err := e.still(); err != nil {
		c.abort()
		return err
	}
	switch {
	case c.name == "" && e.obj == nil:
		// Unnamed, and the name is free: one linkat, which never replaces.
		err = c.link(e.name)
		if err == unix.EEXIST {
			err = errChanged
		}
		c.f.Close()
		if err != nil {
			return err
		}
		return syncDir(e.dir)
	case c.name == "":
		if err := c.link(""); err != nil {
			c.abort()
			return err
		}
	}
	if e.obj == nil {
		err = unix.Renameat2(e.dir.fd, c.name, e.dir.fd, e.name, unix.RENAME_NOREPLACE)
		if err == unix.EINVAL {
			// No RENAME_NOREPLACE here: a second link never replaces
			// either, and the temporary name goes on abort.
			err = unix.Linkat(e.dir.fd, c.name, e.dir.fd, e.name, 0)
			if err == nil {
				c.abort()
				return syncDir(e.dir)
			}
		}
		if err == unix.EEXIST {
			err = errChanged
		}
	} else {
		err = unix.Renameat(e.dir.fd, c.name, e.dir.fd, e.name)
	}
	if err != nil {
		c.abort()
		return err
	}
	c.f.Close()
	return syncDir(e.dir)
}

// unwrapPathError returns the errno inside an *os.PathError.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
