//go:build linux

package hostops

import (
	"strconv"
	"strings"

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
// reload. The target is resolved exactly as the operation would resolve
// it (pinned, symlinks followed, the real path authorized), so the answer
// is the one the operation would get from the policy; the operation may
// still fail for other reasons (not found, wrong type).
//
// Every query is a decision and gets its one audit line, with ReasonQuery
// (and the policy's evaluation errors) as its reason. An unknown action or
// a malformed target is INVALID_ARGUMENT, audited as a deny.
func (h *Host) Allowed(action, target string) (bool, error) {
	shown := target
	if len(shown) > maxShown {
		shown = shown[:maxShown] + "..."
	}
	if h.Audit == nil {
		return false, &Error{Kind: KindIOError, Message: "hostops: host has no audit sink", Action: action, Resource: shown}
	}
	now := h.now()
	refuse := func(msg string) (bool, error) {
		e := &Error{Kind: KindInvalidArgument, Message: "allowed: " + msg, Action: action, Resource: shown}
		return false, h.logRefusal(now, action, shown, e)
	}
	var (
		res   authz.Resource
		query = *h // the request's context, changed for exec
	)
	switch {
	case isFileAction(action):
		if msg := checkPath(target); msg != "" {
			return refuse(msg)
		}
		t, err := resolve(target)
		if err != nil {
			e := sysError(action, target, err)
			return false, h.logRefusal(now, action, target, e)
		}
		if t.obj != nil {
			defer t.obj.close()
		}
		res = resourceOf(t)
	case action == actionExec:
		if msg := checkArgv([]string{target}); msg != "" {
			return refuse(msg)
		}
		name, kind, msg := lookPath(target)
		if msg != "" {
			if kind != KindInvalidArgument {
				e := &Error{Kind: kind, Message: actionExec + ": " + msg, Action: action, Resource: shown}
				return false, h.logRefusal(now, action, shown, e)
			}
			return refuse(msg)
		}
		t, err := resolve(name)
		if err != nil {
			e := sysError(action, name, err)
			return false, h.logRefusal(now, action, name, e)
		}
		if t.obj != nil {
			defer t.obj.close()
		}
		res = authz.Resource{Kind: authz.KindCommand, Path: t.name}
		query.Context.Argv, query.Context.Args = JoinArgv([]string{name}), []string{}
	case isServiceAction(action):
		if msg := checkServiceName(target); msg != "" {
			return refuse(msg)
		}
		res = authz.Resource{Kind: authz.KindService, Path: target}
	default:
		return refuse("unknown action " + strconv.Quote(action))
	}
	allow, dec, reason := query.decide(action, res, now)
	if le := h.log(now, action, res.Path, allow, dec, strings.TrimSuffix(ReasonQuery+"; "+reason, "; ")); le != nil {
		return false, le
	}
	return allow, nil
}

// isFileAction reports whether a names an action on File and Dir.
func isFileAction(a string) bool {
	switch a {
	case "read", "list", "stat", "write", "create", "delete", "mkdir", "rename", "chmod":
		return true
	}
	return false
}
