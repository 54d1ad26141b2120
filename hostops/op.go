//go:build linux

package hostops

// The pipeline every operation runs before it acts: check the path, pin,
// authorize, audit.

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// refusal says why an operation will not act on an object it may touch
// (reading a directory, listing a file); "" means it will.
type refusal func(st *unix.Stat_t) string

// begin pins path, authorizes action on it and writes the operation's one
// audit event. It returns the pinned object only when the operation may go
// ahead; the caller then acts through it and closes it.
//
// The audit event is written before anything is acted on. Its decision is
// "allow" only when the policy allowed; an operation refused before the
// policy was asked (a bad path, a path that cannot be named) is logged as
// "deny" with the reason, and so is an allowed path that does not name the
// object it reaches (a /proc magic link: see refuseUnnamed). A path that
// names nothing is decided by decideMissing. Reason holds the policy's
// evaluation errors, or, when the policy allowed but there is nothing to
// act on (not found, wrong type), the error the caller gets.
func (h *Host) begin(action, path string, refuse refusal) (*pinned, error) {
	if h.Audit == nil {
		// Everything is audited: with nowhere to write, nothing happens.
		return nil, &Error{Kind: KindIOError, Message: "hostops: host has no audit sink", Action: action, Resource: path}
	}
	now := h.now()
	if msg := checkPath(path); msg != "" {
		shown := path
		if len(shown) > maxShown {
			shown = shown[:maxShown] + "..."
		}
		e := &Error{Kind: KindInvalidArgument, Message: action + ": " + msg, Action: action, Resource: shown}
		return nil, h.logRefusal(now, action, shown, e)
	}
	t, err := resolve(path)
	if err != nil {
		e := sysError(action, path, err)
		return nil, h.logRefusal(now, action, path, e)
	}
	allow, dec, reason := h.decideTarget(action, t, now)
	var e *Error
	switch {
	case !allow:
		e = h.deniedError(action, t.name, dec)
	case t.err != nil:
		e = sysError(action, t.name, t.err)
	case refuse != nil:
		if msg := refuse(&t.obj.st); msg != "" {
			e = opError(KindInvalidArgument, action, t.name, msg)
		}
	}
	if allow && e != nil {
		reason = e.Message
	}
	allow = refuseUnnamed(allow, &dec, t.err)
	if ae := h.log(now, action, t.name, allow, dec, reason); ae != nil {
		e = ae
	}
	if e != nil {
		if t.obj != nil {
			t.obj.close()
		}
		return nil, e
	}
	return t.obj, nil
}

// maxShown is how much of a refused path an error and the audit line
// repeat.
const maxShown = 256

// checkPath returns why path cannot be pinned as given, or "".
func checkPath(path string) string {
	switch {
	case len(path) > maxPath:
		return "path is longer than " + strconv.Itoa(maxPath) + " bytes"
	case strings.IndexByte(path, 0) >= 0:
		return "path must not contain NUL bytes, got " + strconv.Quote(path)
	case !strings.HasPrefix(path, "/"):
		return "path must be absolute, got " + strconv.Quote(path)
	}
	return ""
}

// kindOf names the type of an object as Info.Type does.
func kindOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device"
	}
	return "other"
}
