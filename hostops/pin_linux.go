//go:build linux

package hostops

// Pinning: turning a path into an O_PATH descriptor of the object it names,
// and naming that object by the path the kernel knows it by.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	procSelfFD    = "/proc/self/fd/"
	deletedSuffix = " (deleted)"
	// maxPath is the longest path accepted, in bytes (PATH_MAX less the NUL).
	maxPath = unix.PathMax - 1
	// maxRetries bounds the retries of a syscall that reports EINTR or
	// EAGAIN.
	maxRetries = 8
	// nameTries bounds the attempts to name an object that is being
	// renamed; past it the operation fails closed.
	nameTries = 32
	// nameBuf is the size of the buffer a name is first read into, on the
	// stack; a longer name is read again into a buffer of maxNameBuf.
	nameBuf    = 512
	maxNameBuf = unix.PathMax + len(deletedSuffix) + 1
)

var (
	// errUnreachable: the pinned object has no path from this process's root
	// that leads back to it (another mount namespace, an anonymous object).
	errUnreachable = errors.New("not reachable by a path")
	// errUnstable: the pinned object's path kept changing while it was named.
	errUnstable = errors.New("hostops: path kept changing while it was pinned")
	// errSwapped: reopening the pinned descriptor gave another object. It
	// cannot happen unless /proc is not what it should be.
	errSwapped = errors.New("hostops: reopened descriptor is not the pinned object")
	// errMagicLink: the path goes through a /proc magic link, which pinning
	// refuses to follow.
	errMagicLink = errors.New("path goes through a /proc magic link")
)

// openat2 support is probed once, on first use: 0 unknown, 1 present,
// 2 absent (ENOSYS, or EPERM from a seccomp filter that does not know it).
const (
	openat2Unknown int32 = iota
	openat2Present
	openat2Absent
)

var openat2State atomic.Int32

func haveOpenat2() bool {
	switch openat2State.Load() {
	case openat2Present:
		return true
	case openat2Absent:
		return false
	}
	state := openat2Present
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", pathHow())
	switch err {
	case nil:
		unix.Close(fd)
	case unix.ENOSYS, unix.EPERM:
		state = openat2Absent
	}
	openat2State.CompareAndSwap(openat2Unknown, state)
	return openat2State.Load() == openat2Present
}

func pathHow() *unix.OpenHow {
	return &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_MAGICLINKS,
	}
}

// openPath opens name relative to dirfd as an O_PATH descriptor, following
// symlinks but, where the kernel has openat2, not /proc magic links.
func openPath(dirfd int, name string) (int, error) {
	fd, _, err := openPathHow(dirfd, name)
	return fd, err
}

// openPathHow is openPath that also reports whether the descriptor was
// opened by openat2 with RESOLVE_NO_MAGICLINKS.
func openPathHow(dirfd int, name string) (fd int, noMagic bool, err error) {
	noMagic = haveOpenat2()
	fd, err = retry(func() (int, error) {
		if noMagic {
			return unix.Openat2(dirfd, name, pathHow())
		}
		return unix.Openat(dirfd, name, unix.O_PATH|unix.O_CLOEXEC, 0)
	})
	return fd, noMagic, err
}

// procFD holds a descriptor of this process's /proc/self/fd directory,
// opened on first use and kept open (close-on-exec) for the life of the
// process, so that naming or reopening a pinned descriptor looks up one
// name in it instead of walking /proc/self/fd/N from the root each time.
// fd is -1 when /proc/self/fd cannot be opened or is not on procfs; the
// full path is used then. Nothing closes it. Its use adds no trust: a
// reopened descriptor is still checked to hold the pinned object, and a
// name read through it is still looked up unless it is the path walked.
var procFD struct {
	once sync.Once
	fd   int
}

func procFDDir() int {
	procFD.once.Do(func() {
		procFD.fd = -1
		fd, err := unix.Open(procSelfFD, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		var fs unix.Statfs_t
		if unix.Fstatfs(fd, &fs) != nil || fs.Type != unix.PROC_SUPER_MAGIC {
			unix.Close(fd)
			return
		}
		procFD.fd = fd
	})
	return procFD.fd
}

// readlinkFD reads the magic link /proc/self/fd/<fd> into buf.
func readlinkFD(fd int, buf []byte) (int, error) {
	if dir := procFDDir(); dir >= 0 {
		return unix.Readlinkat(dir, strconv.Itoa(fd), buf)
	}
	return unix.Readlink(procSelfFD+strconv.Itoa(fd), buf)
}

// openFD opens the object behind the magic link /proc/self/fd/<fd>.
func openFD(fd, flags int) (int, error) {
	if dir := procFDDir(); dir >= 0 {
		return unix.Openat(dir, strconv.Itoa(fd), flags, 0)
	}
	return unix.Open(procSelfFD+strconv.Itoa(fd), flags, 0)
}

// retry calls f again while it reports EINTR or EAGAIN, a bounded number of
// times.
func retry(f func() (int, error)) (int, error) {
	for i := 0; ; i++ {
		n, err := f()
		if (err == unix.EINTR || err == unix.EAGAIN) && i < maxRetries {
			continue
		}
		return n, err
	}
}

// pinned is an object held by an O_PATH descriptor, with its canonical path
// and the attributes it had when pinned. The owner must call close.
type pinned struct {
	fd   int
	path string
	st   unix.Stat_t
}

func (p *pinned) close() { unix.Close(p.fd) }

// newPinned takes ownership of fd and names the object it holds. On error
// fd is closed; a deletedError still carries the name the object had.
func newPinned(fd int) (*pinned, error) { return newPinnedWalked(fd, "") }

// newPinnedWalked is newPinned for a descriptor that openat2 with
// RESOLVE_NO_MAGICLINKS opened by the path walked, from the process's
// root; walked is "" for any other descriptor. See name.
func newPinnedWalked(fd int, walked string) (*pinned, error) {
	p := &pinned{fd: fd}
	if err := unix.Fstat(fd, &p.st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostops: fstat of the pinned object: %w", err)
	}
	name, err := p.name(walked)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	p.path = name
	return p, nil
}

// deletedError reports that the pinned object was unlinked; Path is the
// name it had.
type deletedError struct{ Path string }

func (e *deletedError) Error() string { return e.Path + ": no such file or directory" }

// name returns the canonical path of the pinned object: what the kernel
// reports for its descriptor, checked by looking that path up again and
// finding the same object (so an unlinked object, one outside this
// process's root or one seen through another mount namespace is never
// given a path that names something else).
//
// The look-up is skipped when the kernel's name is walked itself, byte for
// byte, and does not end in " (deleted)": then the pinning openat2, a
// kernel walk of that very path from this process's root that follows no
// magic link, is the look-up that found the object, and the name is
// accepted on the same two facts as after a look-up — the kernel names the
// object by that path (read under the kernel's rename lock, after the pin
// began), and walking that path from the root reached the object (after
// the pin began). Only their order differs: the walk came before the
// reading of the name instead of after it. Both happen before the policy
// is asked, and the object can be renamed or unmounted after either, as it
// can after a look-up. Any other name (a path through a symlink, "." or
// "..", a name that changed since the walk, an unlinked object, a name
// read from outside this process's root) is looked up as before.
func (p *pinned) name(walked string) (string, error) {
	var small [nameBuf]byte
	buf := small[:]
	for i := 0; i < nameTries; i++ {
		n, err := readlinkFD(p.fd, buf)
		if err == nil && n == len(buf) && len(buf) < maxNameBuf {
			buf = make([]byte, maxNameBuf)
			n, err = readlinkFD(p.fd, buf)
		}
		if err != nil {
			// Not an errno of the path: /proc is missing or unusable.
			return "", fmt.Errorf("hostops: naming the pinned object: %w", err)
		}
		if n == len(buf) {
			return "", unix.ENAMETOOLONG
		}
		if i == 0 && walked != "" && string(buf[:n]) == walked && !strings.HasSuffix(walked, deletedSuffix) {
			return walked, nil
		}
		name := string(buf[:n])
		if !strings.HasPrefix(name, "/") {
			return "", errUnreachable
		}
		if p.namedBy(name) {
			return name, nil
		}
		if trimmed, ok := strings.CutSuffix(name, deletedSuffix); ok && !p.namedBy(trimmed) {
			// Linux marks an unlinked name this way; the object may still
			// have other links, but none we could name.
			return "", &deletedError{Path: trimmed}
		}
		// Renamed between readlink and the look-up: ask again.
	}
	return "", errUnstable
}

// namedBy reports whether name currently leads to the pinned object.
func (p *pinned) namedBy(name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(unix.AT_FDCWD, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && sameObject(&st, &p.st)
}

func sameObject(a, b *unix.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }

// reopen opens the pinned object itself for I/O, through its /proc magic
// link (the one way to upgrade an O_PATH descriptor), and checks that the
// new descriptor holds the same object. The caller closes the result.
func (p *pinned) reopen(flags int) (int, error) {
	fd, err := retry(func() (int, error) {
		return openFD(p.fd, flags|unix.O_CLOEXEC|unix.O_NOCTTY)
	})
	if err == unix.ENOENT || err == unix.ENOTDIR {
		// The descriptor is ours and open, so /proc must be missing.
		return -1, fmt.Errorf("hostops: reopening through /proc: %w", err)
	}
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if !sameObject(&st, &p.st) {
		unix.Close(fd)
		return -1, errSwapped
	}
	return fd, nil
}
