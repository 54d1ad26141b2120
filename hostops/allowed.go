//go:build linux

package hostops

import (
	"context"
	"strconv"

	"github.com/keyhole-dev/keyhole/authz"
)

// ReasonQuery is the audit reason of a decision asked by Allowed: the
// policy was asked, nothing was done.
const ReasonQuery = "query only, nothing done"

// Allowed asks the policy whether action on target would be allowed,
// without acting. target is what the action names: a path for the file
// actions (read, list, stat, write, create, delete, mkdir, rename, chmod),
// a program for exec (an absolute path or a name looked up in
// ExecSearchPath; context.argv is then the program's path alone and
// context.args empty), a service name for status, start, stop, restart and
// reload (resolved by the service manager as Service resolves it, with
// `show`, which changes nothing). The target is resolved exactly as the
// operation would resolve it (pinned, symlinks followed, the real path
// authorized; a path that names nothing decided as decideMissing decides
// it; a path through a /proc magic link denied), so the answer is the one
// the operation would get from the policy; the operation may still fail
// for other reasons (not found, wrong type).
//
// Every query is a decision and gets its one audit line, with ReasonQuery
// (and the policy's evaluation errors) as its reason. An unknown action or
// a malformed target is INVALID_ARGUMENT, audited as a deny.
func (h *Host) Allowed(action, target string) (bool, error) {
	bad := func(msg string) *Error {
		if msg == "" {
			return nil
		}
		return &Error{Kind: KindInvalidArgument, Message: "allowed: " + msg, Action: action, Resource: shorten(target)}
	}
	var rerr *Error // why the service manager could not resolve the name
	op := operation{action: action, arg: shorten(target), query: true}
	switch {
	case isFileAction(action):
		op.check = func() *Error { return bad(checkPath(target)) }
		op.resolve = func() (subject, *Error) {
			t, err := resolve(target)
			if err != nil {
				return subject{}, sysError(action, target, err)
			}
			s := targetSubject(action, t)
			switch {
			case t.obj == nil && action == actionMkdir:
				// What mkdir creates is a directory.
				s.missing, s.res = false, authz.Resource{Kind: authz.KindDir, Path: t.name}
			case t.obj == nil && (action == actionWrite || action == actionCreate):
				// What a write creates is a file.
				s.missing, s.res = false, authz.Resource{Kind: authz.KindFile, Path: t.name}
			}
			s.unfit = unnamedError(action, t)
			return s, nil
		}
	case action == actionExec:
		op.check = func() *Error { return bad(checkArgv([]string{target})) }
		op.resolve = func() (subject, *Error) {
			name, kind, msg := lookPath(target)
			if msg != "" {
				if kind != KindInvalidArgument {
					return subject{}, execInput([]string{target}, kind, msg)
				}
				return subject{}, bad(msg)
			}
			t, err := resolve(name)
			if err != nil {
				return subject{}, sysError(action, name, err)
			}
			// context.argv is the program's path alone, context.args empty.
			s := h.programSubject(action, t, []string{name})
			s.unfit = unnamedError(action, t)
			return s, nil
		}
	case isServiceAction(action):
		op.check = func() *Error { return bad(checkServiceName(target)) }
		op.resolve = func() (subject, *Error) {
			// Resolved as Service resolves it (serviceUnit); a name the
			// manager cannot resolve is not allowed.
			ctx, cancel := context.WithTimeout(context.Background(), serviceResolveTimeout)
			defer cancel()
			_, entity, e := h.serviceUnit(ctx, action, target, ExecOptions{Timeout: serviceResolveTimeout})
			if e != nil {
				rerr = e
				return subject{action: action, name: target, refused: e}, nil
			}
			return subject{action: action, name: entity, res: authz.Resource{Kind: authz.KindService, Path: entity}}, nil
		}
	default:
		op.check = func() *Error { return bad("unknown action " + strconv.Quote(action)) }
	}
	allow, e := h.run(op)
	if e != nil {
		return false, e
	}
	if rerr != nil && rerr.Kind == KindLimitExceeded {
		return false, rerr
	}
	return allow, nil
}

// unnamedError says why an allow of what t names does not hold: its name
// is not the object's (see notNamed).
func unnamedError(action string, t target) func() *Error {
	return func() *Error {
		if notNamed(t.err) {
			return sysError(action, t.name, t.err)
		}
		return nil
	}
}

// isFileAction reports whether a names an action on File and Dir.
func isFileAction(a string) bool {
	switch a {
	case "read", "list", "stat", "write", "create", "delete", "mkdir", "rename", "chmod":
		return true
	}
	return false
}
