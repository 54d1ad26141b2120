//go:build linux

package hostops

// Service actions: a service name authorized as Service::"<name>" for the
// action, then the configured service manager run on it.

import (
	"context"
	"strconv"
	"strings"

	"github.com/keyhole-dev/keyhole/authz"
)

// Service actions, as the schema spells them.
const (
	ServiceStatus  = "status"
	ServiceStart   = "start"
	ServiceStop    = "stop"
	ServiceRestart = "restart"
	ServiceReload  = "reload"
)

// DefaultServiceManager is the service manager when Host.ServiceManager is
// empty.
var DefaultServiceManager = []string{"systemctl"}

// MaxServiceName is the longest service name accepted, in bytes (systemd's
// limit on unit names).
const MaxServiceName = 255

// maxShownStderr is how much of a failed service manager's stderr the
// error repeats.
const maxShownStderr = 512

// ServiceResult is the outcome of a service action.
type ServiceResult struct {
	Name   string
	Action string
	ExecResult
}

// Service performs action (status, start, stop, restart or reload) on the
// service name, authorized as that action on Service::"<name>".
//
// name must be 1 to MaxServiceName bytes of [A-Za-z0-9@._:-], not starting
// with '-' and not "." or "..": anything else is INVALID_ARGUMENT. After an
// allow, Service runs the service manager (Host.ServiceManager, default
// "systemctl") as `<manager...> <action> -- <name>`, exactly as Exec runs
// an allowed program (pinned, no shell, ExecEnv, own process group,
// timeout, output caps); the manager itself is configuration, not
// authorized separately, and the operation has one decision line. A
// manager that cannot be found is IO_ERROR.
//
// For status the manager's exit status is the answer (systemctl: 0 active,
// 3 inactive, 4 unknown) and never an error. For the other actions a
// non-zero exit status is IO_ERROR naming the status and the start of the
// manager's stderr. On a dry run status still runs (it changes nothing);
// the other actions are authorized and audited but not run, and succeed.
func (h *Host) Service(ctx context.Context, action, name string, opts ExecOptions) (ServiceResult, error) {
	res := ServiceResult{Name: name, Action: action}
	shown := name
	if len(shown) > maxShown {
		shown = shown[:maxShown] + "..."
	}
	if h.Audit == nil {
		return res, &Error{Kind: KindIOError, Message: "hostops: host has no audit sink", Action: action, Resource: shown}
	}
	now := h.now()
	msg := ""
	switch {
	case !isServiceAction(action):
		msg = "unknown service action " + strconv.Quote(action)
	default:
		msg = checkServiceName(name)
	}
	if msg != "" {
		e := &Error{Kind: KindInvalidArgument, Message: action + ": " + msg, Action: action, Resource: shown}
		return res, h.logRefusal(now, action, shown, e)
	}
	allow, dec, reason := h.decide(action, authz.Resource{Kind: authz.KindService, Path: name}, now)
	var (
		e    *Error
		prog *pinned
		vec  []string
	)
	if !allow {
		e = h.deniedError(action, name, dec)
	} else {
		prog, vec, e = h.serviceManager(action, name)
		if e != nil {
			reason = e.Message
		}
	}
	if le := h.log(now, action, name, allow, dec, reason); le != nil {
		if prog != nil {
			prog.close()
		}
		return res, le // past the operation cap: not run
	}
	if e != nil {
		return res, e
	}
	defer prog.close()
	if h.DryRun && action != ServiceStatus {
		res.Path = prog.path
		return res, nil
	}
	out, err := h.spawn(ctx, prog, vec, opts, action, name)
	if err != nil {
		return res, err
	}
	res.ExecResult = out
	res.Path = prog.path // the manager's, as on a dry run (spawn names the service)
	if action != ServiceStatus && (out.Exit != 0 || out.Signal != "") {
		status := "exit status " + strconv.Itoa(out.Exit)
		if out.Signal != "" {
			status = "signal " + out.Signal
		}
		detail := strings.TrimSpace(string(out.Stderr))
		if len(detail) > maxShownStderr {
			detail = detail[:maxShownStderr] + "..."
		}
		m := "service manager failed with " + status
		if detail != "" {
			m += ": " + strconv.Quote(detail)
		}
		return res, opError(KindIOError, action, name, m)
	}
	return res, nil
}

// serviceManager pins the configured service manager and returns it with
// the argument vector for action on name.
func (h *Host) serviceManager(action, name string) (*pinned, []string, *Error) {
	mgr := h.ServiceManager
	if len(mgr) == 0 {
		mgr = DefaultServiceManager
	}
	broken := func(msg string) (*pinned, []string, *Error) {
		return nil, nil, opError(KindIOError, action, name, "service manager "+strconv.Quote(mgr[0])+": "+msg)
	}
	if msg := checkArgv(mgr); msg != "" {
		return broken(msg)
	}
	path, _, msg := lookPath(mgr[0])
	if msg != "" {
		return broken(msg)
	}
	t, err := resolve(path)
	if err != nil {
		return broken(err.Error())
	}
	if t.err != nil {
		if t.obj != nil {
			t.obj.close()
		}
		return broken(t.err.Error())
	}
	if msg := refuseExec(&t.obj.st); msg != "" {
		t.obj.close()
		return broken(msg)
	}
	vec := append([]string{path}, mgr[1:]...)
	vec = append(vec, action, "--", name)
	return t.obj, vec, nil
}

func isServiceAction(a string) bool {
	switch a {
	case ServiceStatus, ServiceStart, ServiceStop, ServiceRestart, ServiceReload:
		return true
	}
	return false
}

// checkServiceName returns why name is not an acceptable service name, or
// "".
func checkServiceName(name string) string {
	switch {
	case name == "":
		return "service name must not be empty"
	case len(name) > MaxServiceName:
		return "service name is longer than " + strconv.Itoa(MaxServiceName) + " bytes"
	case name[0] == '-':
		return "service name must not start with '-', got " + strconv.Quote(name)
	case name == "." || name == "..":
		return "service name must not be " + strconv.Quote(name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '@' || c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return "service name may hold only letters, digits and @._:-, got " + strconv.Quote(name)
		}
	}
	return ""
}
