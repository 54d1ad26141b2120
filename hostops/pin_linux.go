//go:build linux

package hostops

// Pinning: turning a path into an O_PATH descriptor of the object it names,
// and naming that object by the path the kernel knows it by.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	return retry(func() (int, error) {
		if haveOpenat2() {
			return unix.Openat2(dirfd, name, pathHow())
		}
		return unix.Openat(dirfd, name, unix.O_PATH|unix.O_CLOEXEC, 0)
	})
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
func newPinned(fd int) (*pinned, error) {
	p := &pinned{fd: fd}
	if err := unix.Fstat(fd, &p.st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostops: fstat of the pinned object: %w", err)
	}
	name, err := p.name()
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
func (p *pinned) name() (string, error) {
	link := procSelfFD + strconv.Itoa(p.fd)
	buf := make([]byte, unix.PathMax+len(deletedSuffix)+1)
	for i := 0; i < nameTries; i++ {
		n, err := unix.Readlink(link, buf)
		if err != nil {
			// Not an errno of the path: /proc is missing or unusable.
			return "", fmt.Errorf("hostops: naming the pinned object: %w", err)
		}
		if n == len(buf) {
			return "", unix.ENAMETOOLONG
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
		return unix.Open(procSelfFD+strconv.Itoa(p.fd), flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
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
