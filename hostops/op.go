//go:build linux

package hostops

// The pipeline every operation runs before it acts: check the input, pin,
// authorize, audit (run).

import (
	"strconv"
	"strings"

	"github.com/keyhole-dev/keyhole/authz"
	"golang.org/x/sys/unix"
)

// refusal says why an operation will not act on an object it may touch
// (reading a directory, listing a file); "" means it will.
type refusal func(st *unix.Stat_t) string

// operation is what one host operation brings to run, the pipeline every
// operation goes through: its input check and how it pins what it acts on.
// The rest (the audit sink, the clock, the refusal of bad input, the
// decision, the one audit line, the error) is run's.
type operation struct {
	// action and arg name the operation when there is no audit sink.
	action, arg string
	// check returns the error of input refused before anything is looked
	// at, or nil.
	check func() *Error
	// resolve pins what the operation acts on and returns it as the
	// subject to decide; an error refuses the operation before the policy
	// is asked.
	resolve func() (subject, *Error)
	// query: the operation only asks (Allowed). Its decided line's reason
	// starts with ReasonQuery, nothing acts, and only the audit line's
	// failure is an error.
	query bool
}

// subject is what an operation is decided on.
type subject struct {
	// action is the action decided; name the resource on the audit line
	// and the errors.
	action, name string
	// res is the resource decided, unless missing: name names nothing and
	// is decided as decideMissing decides.
	res     authz.Resource
	missing bool
	// asker, when set, is the host (its request context and event
	// template) the policy is asked and the line written with.
	asker *Host
	// unnamed: name is not the object's (see notNamed), so an allow does
	// not act and is logged as a deny (refuseUnnamed).
	unnamed bool
	// refused, when set, denies the operation with this error without
	// asking the policy (the subject could not be known).
	refused *Error
	// unfit says, after an allow, why the operation will not act; nil
	// means it will.
	unfit func() *Error
	// close releases what resolve pinned when the operation does not go
	// ahead; the caller owns it otherwise.
	close func()
}

// targetSubject is what t names for action: the pinned object, or, for a
// path that names nothing, what decideMissing decides.
func targetSubject(action string, t target) subject {
	s := subject{action: action, name: t.name, unnamed: notNamed(t.err), missing: t.obj == nil}
	if t.obj != nil {
		s.res = resourceOf(t)
		s.close = t.obj.close
	}
	return s
}

// run is the one way an operation reaches the host: it checks op's input,
// resolves its subject, decides it and writes the operation's one audit
// event, before anything is acted on. For an operation that may go ahead
// it returns the decision (true, but for a query) and nil; the caller then
// acts through what resolve pinned and closes it. Otherwise what resolve
// pinned is closed and the error returned.
//
// The event's decision is "allow" only when the policy allowed; an
// operation refused before the policy was asked (bad input, a path that
// cannot be named) is logged as "deny" with the reason, and so is an
// allowed name that is not the object's (refuseUnnamed). Reason holds the
// policy's evaluation errors, or, when the policy allowed but the
// operation will not act (not found, wrong type), the error the caller
// gets.
//
// Under Host.DryRun the decision and its line are the same as in a real
// run, and the line says dry_run (log); an operation that changes the
// host then returns what it would have done without acting, and reads
// read. TestEveryOperationHonoursDryRun holds every method of Host to it.
func (h *Host) run(op operation) (bool, *Error) {
	if h.Audit == nil {
		// Everything is audited: with nowhere to write, nothing happens.
		return false, &Error{Kind: KindIOError, Message: "hostops: host has no audit sink", Action: op.action, Resource: op.arg}
	}
	now := h.now()
	var (
		s subject
		e *Error
	)
	if op.check != nil {
		e = op.check()
	}
	if e == nil {
		s, e = op.resolve()
	}
	if e != nil {
		return false, h.logRefusal(now, e.Action, e.Resource, e)
	}
	asker := h
	if s.asker != nil {
		asker = s.asker
	}
	var (
		allow  bool
		dec    authz.Decision
		reason string
	)
	switch {
	case s.refused != nil:
		e, reason = s.refused, s.refused.Message
	case s.missing:
		allow, dec, reason = asker.decideMissing(s.action, s.name, now)
	default:
		allow, dec, reason = asker.decide(s.action, s.res, now)
	}
	switch {
	case e != nil:
	case !allow:
		e = asker.deniedError(s.action, s.name, dec)
	case s.unfit != nil:
		if e = s.unfit(); e != nil {
			reason = e.Message
		}
	}
	allow = refuseUnnamed(allow, &dec, s.unnamed)
	if op.query {
		reason = strings.TrimSuffix(ReasonQuery+"; "+reason, "; ")
		e = nil
	}
	if ae := asker.log(now, s.action, s.name, allow, dec, reason); ae != nil {
		e = ae
	}
	if (e != nil || op.query) && s.close != nil {
		s.close()
	}
	if e != nil {
		return false, e
	}
	return allow, nil
}

// begin pins path, authorizes action on it and writes the operation's one
// audit event (run). It returns the pinned object only when the operation
// may go ahead; the caller then acts through it and closes it. refuse,
// when set, says after an allow why the object is not one the operation
// acts on.
func (h *Host) begin(action, path string, refuse refusal) (*pinned, error) {
	return h.beginArg(action, path, "", refuse)
}

// beginArg is begin for an operation with an argument besides its path:
// argMsg, when set, refuses it before the path is looked at.
func (h *Host) beginArg(action, path, argMsg string, refuse refusal) (*pinned, error) {
	var t target
	_, e := h.run(operation{
		action: action,
		arg:    path,
		check: func() *Error {
			return badInput(action, path, argMsg, checkPath(path))
		},
		resolve: func() (subject, *Error) {
			var err error
			if t, err = resolve(path); err != nil {
				return subject{}, sysError(action, path, err)
			}
			s := targetSubject(action, t)
			s.unfit = func() *Error {
				if t.err != nil {
					return sysError(action, t.name, t.err)
				}
				if msg := refuse.of(&t.obj.st); msg != "" {
					return opError(KindInvalidArgument, action, t.name, msg)
				}
				return nil
			}
			return s, nil
		},
	})
	if e != nil {
		return nil, e
	}
	return t.obj, nil
}

// of is what r says of st; a nil refusal refuses nothing.
func (r refusal) of(st *unix.Stat_t) string {
	if r == nil {
		return ""
	}
	return r(st)
}

// badInput is the INVALID_ARGUMENT error, "<action>: <msg>", of the first
// of msgs that is set, naming arg as shown; nil when none is.
func badInput(action, arg string, msgs ...string) *Error {
	for _, msg := range msgs {
		if msg != "" {
			return &Error{Kind: KindInvalidArgument, Message: action + ": " + msg, Action: action, Resource: shorten(arg)}
		}
	}
	return nil
}

// shorten is s as a refusal repeats it: at most maxShown bytes.
func shorten(s string) string {
	if len(s) > maxShown {
		return s[:maxShown] + "..."
	}
	return s
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
