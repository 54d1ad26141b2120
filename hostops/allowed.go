//go:build linux

package hostops

import (
	"context"
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
		terr  error // why the program's path names no object, if it does not
		query = *h  // the request's context, changed for exec
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
		var (
			allow  bool
			dec    authz.Decision
			reason string
		)
		switch {
		case t.obj == nil && action == actionMkdir:
			// What mkdir creates is a directory.
			allow, dec, reason = h.decide(action, authz.Resource{Kind: authz.KindDir, Path: t.name}, now)
		case t.obj == nil && (action == actionWrite || action == actionCreate):
			// What a write creates is a file.
			allow, dec, reason = h.decide(action, authz.Resource{Kind: authz.KindFile, Path: t.name}, now)
		default:
			allow, dec, reason = h.decideTarget(action, t, now)
		}
		if notNamed(t.err) && allow {
			reason = sysError(action, t.name, t.err).Message
		}
		allow = refuseUnnamed(allow, &dec, notNamed(t.err))
		if ae := h.log(now, action, t.name, allow, dec, strings.TrimSuffix(ReasonQuery+"; "+reason, "; ")); ae != nil {
			return false, ae
		}
		return allow, nil
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
		terr = t.err
		query.Context.Argv, query.Context.Args = JoinArgv([]string{name}), []string{}
	case isServiceAction(action):
		if msg := checkServiceName(target); msg != "" {
			return refuse(msg)
		}
		// Resolved as Service resolves it (serviceUnit); a name the manager
		// cannot resolve is not allowed.
		ctx, cancel := context.WithTimeout(context.Background(), serviceResolveTimeout)
		defer cancel()
		_, entity, rerr := h.serviceUnit(ctx, action, target, ExecOptions{Timeout: serviceResolveTimeout})
		if rerr != nil {
			if ae := h.log(now, action, target, false, authz.Decision{}, ReasonQuery+"; "+rerr.Message); ae != nil {
				return false, ae
			}
			if rerr.Kind == KindLimitExceeded {
				return false, rerr
			}
			return false, nil
		}
		res = authz.Resource{Kind: authz.KindService, Path: entity}
	default:
		return refuse("unknown action " + strconv.Quote(action))
	}
	allow, dec, reason := query.decide(action, res, now)
	if allow && notNamed(terr) {
		reason = sysError(action, res.Path, terr).Message
	}
	allow = refuseUnnamed(allow, &dec, notNamed(terr))
	if ae := query.log(now, action, res.Path, allow, dec, strings.TrimSuffix(ReasonQuery+"; "+reason, "; ")); ae != nil {
		return false, ae
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
