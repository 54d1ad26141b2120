//go:build linux

package hostops

// Resolution: from a path to what gets authorized. A path that names an
// object is pinned in one openat2 call. A path that does not is walked one
// component at a time, the way the kernel walks it, to the deepest object
// it reaches; what is authorized then is that object's real path plus the
// part of the path that was never reached, so the answer (ACCESS_DENIED or
// NOT_FOUND) never depends on what exists under a directory the principal
// may not see.

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// maxFollows bounds the dangling symlinks the walk follows by their text,
// as the kernel bounds symlinks in one path (MAXSYMLINKS).
const maxFollows = 40

// target is what a path resolves to.
type target struct {
	// obj is the object the path names, or, when err is set and the unreached
	// part of the path is empty after cleaning, the object where resolution
	// stopped. Its owner closes it.
	obj *pinned
	// name is the canonical path to authorize.
	name string
	// err is why the path names no object to act on (an errno such as
	// ENOENT, ENOTDIR, ELOOP, EACCES, or errMagicLink); nil when obj is the
	// object named.
	err error
}

// resolve pins the object path names. An error means the path could not be
// given a canonical name at all; a path that names nothing is a target
// with err set.
func resolve(path string) (target, error) {
	fd, noMagic, err := openPathHow(unix.AT_FDCWD, path)
	if err != nil {
		return walk(path)
	}
	walked := ""
	if noMagic {
		walked = path
	}
	return pinnedTarget(fd, walked)
}

// pinnedTarget names the object fd holds; walked is as for
// newPinnedWalked.
func pinnedTarget(fd int, walked string) (target, error) {
	p, err := newPinnedWalked(fd, walked)
	if err == nil {
		return target{obj: p, name: p.path}, nil
	}
	var del *deletedError
	if errors.As(err, &del) {
		return target{name: del.Path, err: unix.ENOENT}, nil
	}
	return target{}, err
}

// walk resolves path one component at a time from "/", each step an
// openPath of one name (so symlinks and ".." resolve as the kernel resolves
// them). A symlink that leads nowhere is followed by its text, so a
// dangling link is judged by where it points. The walk stops at the first
// component that does not resolve.
func walk(path string) (target, error) {
	comps := split(path)
	dir, err := openPath(unix.AT_FDCWD, "/")
	if err != nil {
		return target{}, err
	}
	follows := 0
	var stop error
	for len(comps) > 0 {
		c := comps[0]
		fd, err := openPath(dir, c)
		if err == nil {
			unix.Close(dir)
			dir, comps = fd, comps[1:]
			continue
		}
		stop = err
		if !followable(err) || c == "." || c == ".." {
			break
		}
		link, lerr := readlinkat(dir, c)
		if lerr != nil {
			break // not a symlink: this component is where the path ends
		}
		if err == unix.ELOOP && onProc(dir) {
			stop = errMagicLink
			break
		}
		if follows++; follows > maxFollows {
			stop = unix.ELOOP
			break
		}
		if link == "" {
			stop = unix.ENOENT
			break
		}
		comps = append(split(link), comps[1:]...)
		if strings.HasPrefix(link, "/") {
			root, err := openPath(unix.AT_FDCWD, "/")
			if err != nil {
				unix.Close(dir)
				return target{}, err
			}
			unix.Close(dir)
			dir = root
		}
	}
	if len(comps) == 0 {
		// Everything resolved after all (it was created meanwhile, or the
		// path held more symlinks than one kernel walk allows).
		return pinnedTarget(dir, "")
	}
	p, err := newPinned(dir)
	if err != nil {
		var del *deletedError
		if errors.As(err, &del) {
			return target{name: join(del.Path, unreached(comps)), err: unix.ENOENT}, nil
		}
		return target{}, err
	}
	rest := unreached(comps)
	if len(rest) == 0 {
		return target{obj: p, name: p.path, err: stop}, nil
	}
	name := join(p.path, rest)
	p.close()
	return target{name: name, err: stop}, nil
}

// followable reports whether a failed step may be a symlink to follow by
// hand: one whose target is missing, runs through a non-directory, or loops.
func followable(err error) bool {
	return err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP
}

// split returns the components of path, keeping "." and ".."; a trailing
// slash becomes a final "." so that it asks for a directory, as it does of
// the kernel.
func split(path string) []string {
	var comps []string
	for _, c := range strings.Split(path, "/") {
		if c != "" {
			comps = append(comps, c)
		}
	}
	if len(comps) > 0 && strings.HasSuffix(path, "/") {
		comps = append(comps, ".")
	}
	return comps
}

// unreached cleans the part of a path the walk did not reach: "." is
// dropped and everything from the first ".." on is cut. The kernel never
// looks past the first component that fails, so the remainder is only a
// name; cutting at ".." keeps that name beneath the real directory where
// resolution stopped, instead of letting "missing/../../etc/shadow" name a
// file elsewhere that was never looked at.
func unreached(comps []string) []string {
	var rest []string
	for _, c := range comps {
		if c == ".." {
			break
		}
		if c != "." {
			rest = append(rest, c)
		}
	}
	return rest
}

func join(dir string, rest []string) string {
	if len(rest) == 0 {
		return dir
	}
	if dir == "/" {
		return "/" + strings.Join(rest, "/")
	}
	return dir + "/" + strings.Join(rest, "/")
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	if n == len(buf) {
		return "", unix.ENAMETOOLONG
	}
	return string(buf[:n]), nil
}

// onProc reports whether fd is on procfs, the home of magic links.
func onProc(fd int) bool {
	var fs unix.Statfs_t
	return unix.Fstatfs(fd, &fs) == nil && fs.Type == unix.PROC_SUPER_MAGIC
}
