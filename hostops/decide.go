//go:build linux

package hostops

// Authorization and audit: the resource a pinned object becomes, the
// question put to the Decider, the one audit event per operation, and the
// errors a script sees.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"golang.org/x/sys/unix"
)

// Action names, as the schema spells them.
const (
	actionRead = "read"
	actionList = "list"
	actionStat = "stat"
)

// Audit decision values.
const (
	allowed = "allow"
	denied  = "deny"
)

// reasonNoPolicy is the audit reason when a Host has no Decider: it denies.
const reasonNoPolicy = "hostops: host has no policy"

func (h *Host) now() time.Time {
	if h.Clock != nil {
		return h.Clock()
	}
	return time.Now()
}

// resourceOf is the resource t names: the pinned object with its
// attributes, or a File that does not exist.
func resourceOf(t target) authz.Resource {
	if t.obj == nil {
		return authz.Resource{Kind: authz.KindFile, Path: t.name}
	}
	st := &t.obj.st
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return authz.Resource{Kind: authz.KindDir, Path: t.name, Exists: true}
	}
	// One allocation for the four attributes instead of one each.
	attrs := &[4]int64{st.Size, int64(st.Mode & 0o7777), int64(st.Uid), int64(st.Nlink)}
	return authz.Resource{
		Kind:   authz.KindFile,
		Path:   t.name,
		Exists: true,
		Size:   &attrs[0],
		Mode:   &attrs[1],
		UID:    &attrs[2],
		Nlink:  &attrs[3],
	}
}

// decide asks the policy about action on res. A decision that carries
// evaluation errors denies whatever it says, and so does a missing policy:
// keyhole does not fail open.
func (h *Host) decide(action string, res authz.Resource, now time.Time) (allow bool, dec authz.Decision, reason string) {
	if h.Policy == nil {
		return false, authz.Decision{}, reasonNoPolicy
	}
	ctx := h.Context
	ctx.Now = now
	dec = h.Policy.Decide(authz.Request{
		Principal: h.Principal,
		Action:    action,
		Resource:  res,
		Context:   ctx,
	})
	return dec.Allow && len(dec.Errors) == 0, dec, dec.ErrorText()
}

// log writes the one decision event of an operation, which it first
// counts against the script's operation cap (Counters.MaxOperations). An
// exec decision records the argument vector it was asked about
// (h.Context.Argv). It returns nil when the line was written and the
// operation may act. Otherwise the operation must not act and the caller
// returns the error log returns: INTERNAL when the line could not be
// written (auditError), else, past the cap, LIMIT_EXCEEDED — the event is
// then a deny whose reason is the cap's message.
func (h *Host) log(now time.Time, action, resource string, allow bool, dec authz.Decision, reason string) *Error {
	limit := h.Counters.chargeOperation(action, resource)
	if limit != nil {
		allow, reason = false, limit.Message
		dec = authz.Decision{Version: dec.Version}
	}
	e := h.Event
	e.Time = now
	e.Event = audit.Decision
	e.Action = action
	e.Resource = resource
	e.Decision = denied
	if allow {
		e.Decision = allowed
	}
	e.Policies = append([]string(nil), dec.Policies...)
	e.PolicyVersion = dec.Version
	e.Reason = reason
	e.Exit = nil
	e.Argv = ""
	if action == actionExec {
		e.Argv = h.Context.Argv
	}
	// Every line of a dry run says so: an allowed write here was not
	// performed.
	e.DryRun = h.DryRun
	if h.Audit.Log(e) != nil {
		return auditError(action, resource)
	}
	return limit
}

// auditError is the error of an operation whose decision line could not
// be written: the operation did not happen, and the script ends with it
// (KindInternal; catch does not catch it). Why the line failed is the
// audit sink's to report; the script sees only that it did.
func auditError(action, resource string) *Error {
	return &Error{Kind: KindInternal, Message: "audit log unwritable, " + action + " " + resource + " not performed",
		Action: action, Resource: resource}
}

// logRefusal writes the deny event of an operation refused with e before
// the policy was asked, and returns the error the caller returns: e, or
// the error log returned (INTERNAL, or LIMIT_EXCEEDED past the operation
// cap).
func (h *Host) logRefusal(now time.Time, action, resource string, e *Error) *Error {
	if ae := h.log(now, action, resource, false, authz.Decision{}, e.Message); ae != nil {
		return ae
	}
	return e
}

// deniedError is the ACCESS_DENIED error for a deny decision, in the form
// `read /etc/shadow denied for User::"agent-7" in Role::"logs" (policy
// no-etc)`: who asked, in which role (the fact that matters when deploy@
// is denied what logs@ may do), and which policies decided. An exec
// denial shows the argument vector it was decided on (h.Context.Argv):
// `exec /usr/bin/df -h / denied for …`, or, when the program's real path
// is not the vector's first word, `exec /usr/bin/python3.11 (argv
// /usr/bin/python3 -c x) denied for …`.
func (h *Host) deniedError(action, resource string, dec authz.Decision) *Error {
	shown := resource
	if argv := h.Context.Argv; action == actionExec && argv != "" {
		if len(argv) > maxShownArgv {
			argv = argv[:maxShownArgv] + "..."
		}
		if argv == resource || strings.HasPrefix(argv, resource+" ") {
			shown = argv
		} else {
			shown = resource + " (argv " + argv + ")"
		}
	}
	return &Error{
		Kind: KindAccessDenied,
		Message: fmt.Sprintf("%s %s denied for User::%s in Role::%s (%s)", action, shown,
			strconv.Quote(h.Principal.UserID), strconv.Quote(h.Principal.Role), why(dec)),
		Action:   action,
		Resource: resource,
		Policies: append([]string(nil), dec.Policies...),
	}
}

// maxShownArgv is how much of an argument vector a denial repeats.
const maxShownArgv = 1024

// why says which policies denied: "policy no-etc", "policies a, b",
// "policy p erred", "policy no-etc; policy p erred" or
// "no policy permits it".
func why(dec authz.Decision) string {
	var erred []string
	unnamed := false
	for _, e := range dec.Errors {
		if e.Policy == "" {
			unnamed = true
			continue
		}
		if !slices.Contains(erred, e.Policy) {
			erred = append(erred, e.Policy)
		}
	}
	var matched []string
	for _, id := range dec.Policies {
		if !slices.Contains(erred, id) && !slices.Contains(matched, id) {
			matched = append(matched, id)
		}
	}
	var parts []string
	if len(matched) > 0 {
		parts = append(parts, policies(matched))
	}
	if len(erred) > 0 {
		parts = append(parts, policies(erred)+" erred")
	}
	if unnamed {
		parts = append(parts, "a policy erred")
	}
	if len(parts) == 0 {
		return "no policy permits it"
	}
	return strings.Join(parts, "; ")
}

func policies(ids []string) string {
	if len(ids) == 1 {
		return "policy " + ids[0]
	}
	return "policies " + strings.Join(ids, ", ")
}

// opError is an error of kind about resource, in the form
// "read /x/y: message".
func opError(kind, action, resource, msg string) *Error {
	return &Error{Kind: kind, Message: action + " " + resource + ": " + msg, Action: action, Resource: resource}
}

// sysError turns an error from the host into the Error a script sees.
func sysError(action, resource string, err error) *Error {
	switch err {
	case unix.ENOENT, unix.ENOTDIR:
		return opError(KindNotFound, action, resource, err.Error())
	case unix.ELOOP, unix.ENAMETOOLONG, errMagicLink, errUnreachable:
		return opError(KindInvalidArgument, action, resource, err.Error())
	}
	return opError(KindIOError, action, resource, err.Error())
}
