//go:build linux

package hostops

// Service actions: a service name resolved by the service manager to its
// canonical unit, authorized as Service::"<unit>" for the action, then the
// configured service manager run on that unit.

import (
	"context"
	"strconv"
	"strings"
	"time"

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

// DefaultServiceManager returns the service manager used when
// Host.ServiceManager is empty: systemctl (a new slice each call).
func DefaultServiceManager() []string { return []string{"systemctl"} }

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
// service name, authorized as that action on Service::"<unit>", where unit
// is the name as the service manager resolves it (serviceUnit).
//
// name must be 1 to MaxServiceName bytes of [A-Za-z0-9@._:-], not starting
// with '-' and not "." or "..": anything else is INVALID_ARGUMENT. The
// service manager (Host.ServiceManager, default "systemctl") is asked
// first, as `<manager...> show --property=Id --value -- <name>`, for the
// canonical id of the unit name stands for, so that "ssh", "ssh.service"
// and an alias such as "sshd" are one entity; a name it cannot resolve is
// denied (fail closed), with the manager's answer as the reason on the
// audit line, and is IO_ERROR, unless the policy denies the name as given,
// which is ACCESS_DENIED as usual (a denied principal learns nothing about
// the configuration). After an allow, Service runs the manager as
// `<manager...> <action> -- <unit id>`, on the unit it authorized, exactly
// as Exec runs an allowed program (pinned, no shell, ExecEnv, own process
// group, timeout, output caps); the manager itself is configuration, not
// authorized separately, and the operation has one decision line, whose
// resource is the entity name. A manager that cannot be found is IO_ERROR.
//
// For status the manager's exit status is the answer (systemctl: 0 active,
// 3 inactive, 4 unknown) and never an error. For the other actions a
// non-zero exit status is IO_ERROR naming the status and the start of the
// manager's stderr. On a dry run the name is still resolved and status
// still runs (they change nothing); the other actions are authorized and
// audited but not run, and succeed. The result's Name is the entity name.
func (h *Host) Service(ctx context.Context, action, name string, opts ExecOptions) (ServiceResult, error) {
	res := ServiceResult{Name: name, Action: action}
	var (
		prog *pinned
		vec  []string
	)
	_, e := h.run(operation{
		action: action,
		arg:    shorten(name),
		check: func() *Error {
			if !isServiceAction(action) {
				return badInput(action, name, "unknown service action "+strconv.Quote(action))
			}
			return badInput(action, name, checkServiceName(name))
		},
		resolve: func() (subject, *Error) {
			unit, entity, rerr := h.serviceUnit(ctx, action, name, opts)
			switch {
			case rerr != nil && rerr.Kind == KindLimitExceeded:
				// The script's budget or time ran out while asking: nothing
				// was decided.
				return subject{action: action, name: name, refused: rerr}, nil
			case rerr != nil:
				// Unresolved: denied whatever the policy says of the name as
				// given, which only chooses the error the script sees.
				return subject{action: action, name: name, unnamed: true,
					res:   authz.Resource{Kind: authz.KindService, Path: name},
					unfit: func() *Error { return rerr }}, nil
			}
			res.Name = entity
			return subject{action: action, name: entity,
				res: authz.Resource{Kind: authz.KindService, Path: entity},
				unfit: func() *Error {
					var e *Error
					prog, vec, e = h.serviceManager(action, entity, action, "--", unit)
					return e
				},
				close: func() {
					if prog != nil {
						prog.close()
					}
				}}, nil
		},
	})
	if e != nil {
		return res, e
	}
	defer prog.close()
	if h.DryRun && action != ServiceStatus {
		res.Path = prog.path
		return res, nil
	}
	out, err := h.spawn(ctx, prog, vec, opts, action, res.Name)
	if err != nil {
		return res, err
	}
	res.ExecResult = out
	res.Path = prog.path // the manager's, as on a dry run (spawn names the service)
	if action != ServiceStatus && (out.Exit != 0 || out.Signal != "") {
		return res, opError(KindIOError, action, res.Name, "service manager failed with "+managerFailure(out))
	}
	return res, nil
}

// managerFailure describes a failed run of the service manager: its exit
// status or signal and the start of its stderr.
func managerFailure(out ExecResult) string {
	status := "exit status " + strconv.Itoa(out.Exit)
	if out.Signal != "" {
		status = "signal " + out.Signal
	}
	detail := strings.TrimSpace(string(out.Stderr))
	if len(detail) > maxShownStderr {
		detail = detail[:maxShownStderr] + "..."
	}
	if detail != "" {
		status += ": " + strconv.Quote(detail)
	}
	return status
}

// ServiceUnitSuffix is the suffix of a service unit's id that the entity
// name leaves out: Service::"nginx" is the unit "nginx.service".
const ServiceUnitSuffix = ".service"

// serviceResolveTimeout bounds the service manager's answer to a query
// that has no timeout of its own (Allowed).
const serviceResolveTimeout = 10 * time.Second

// serviceUnit asks the service manager for the canonical id of the unit
// name stands for (`<manager...> show --property=Id --value -- <name>`)
// and returns it with the entity name policies see: the id without
// ServiceUnitSuffix for a service unit ("sshd" → "ssh.service" → "ssh"),
// the whole id for any other unit ("ssh.socket"). The answer must be
// exactly one line holding a valid service name, and the manager must
// exit 0; anything else is an IO_ERROR naming what it said (a run cut
// short by the script's limits is their LIMIT_EXCEEDED).
func (h *Host) serviceUnit(ctx context.Context, action, name string, opts ExecOptions) (unit, entity string, e *Error) {
	prog, vec, e := h.serviceManager(action, name, "show", "--property=Id", "--value", "--", name)
	if e != nil {
		return "", "", e
	}
	defer prog.close()
	// The answer is one unit name and its newline, whatever the cap on a
	// program's output is: one byte more says it was longer.
	c := *h
	c.MaxExecOutput = MaxServiceName + 2
	out, err := c.spawn(ctx, prog, vec, opts, action, name)
	if err != nil {
		if ee, ok := err.(*Error); ok {
			return "", "", ee
		}
		return "", "", opError(KindIOError, action, name, err.Error())
	}
	fail := func(msg string) (string, string, *Error) {
		return "", "", opError(KindIOError, action, name, "service manager cannot resolve the name: "+msg)
	}
	if out.Exit != 0 || out.Signal != "" {
		return fail(managerFailure(out))
	}
	unit, ok := strings.CutSuffix(string(out.Stdout), "\n")
	if !ok || out.Truncated || strings.Contains(unit, "\n") || checkServiceName(unit) != "" {
		shown := string(out.Stdout)
		if len(shown) > maxShownStderr {
			shown = shown[:maxShownStderr] + "..."
		}
		return fail("its answer " + strconv.Quote(shown) + " is not one unit id on a line")
	}
	entity = unit
	if base, ok := strings.CutSuffix(unit, ServiceUnitSuffix); ok && base != "" {
		entity = base
	}
	return unit, entity, nil
}

// serviceManager pins the configured service manager and returns it with
// its argument vector: the manager's own, then args. Errors are about
// action on name.
func (h *Host) serviceManager(action, name string, args ...string) (*pinned, []string, *Error) {
	mgr := h.ServiceManager
	if len(mgr) == 0 {
		mgr = DefaultServiceManager()
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
	vec = append(vec, args...)
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
