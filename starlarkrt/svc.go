package starlarkrt

import (
	"context"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/keyhole-dev/keyhole/hostops"
)

// ServiceHost is the part of Host the svc module uses; *hostops.Host
// implements it.
type ServiceHost interface {
	Service(ctx context.Context, action, name string, opts hostops.ExecOptions) (hostops.ServiceResult, error)
}

// svcModule is the svc module: status, start, stop, restart and reload of
// a service through the configured service manager.
func svcModule(r *run) *starlarkstruct.Module {
	fns := map[string]func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error){}
	for _, action := range []string{hostops.ServiceStatus, hostops.ServiceStart, hostops.ServiceStop, hostops.ServiceRestart, hostops.ServiceReload} {
		fns[action] = r.svcAction(action)
	}
	return module("svc", fns)
}

// svc.<action>(name, timeout=None) performs the action on the service
// (hostops.Host.Service: name of [A-Za-z0-9@._:-], resolved by the manager
// to its canonical unit and authorized as the action on
// Service::"<unit without .service>", the manager run as
// `<manager> <action> -- <unit>`). It returns a struct: name (the entity
// name), action, exit, stdout, stderr, truncated, signal, path (the
// manager's), and for status also active (exit status 0). For start,
// stop, restart and reload a failing manager is an IO_ERROR that quotes
// its stderr; for status a non-zero exit is the answer, not an error.
func (r *run) svcAction(action string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var (
			name     string
			timeoutV starlark.Value = starlark.None
		)
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "timeout?", &timeoutV); err != nil {
			return nil, invalidArgument(b, err)
		}
		var opts hostops.ExecOptions
		var err error
		if opts.Timeout, err = timeoutArg(b, timeoutV); err != nil {
			return nil, err
		}
		h, err := r.host(b)
		if err != nil {
			return nil, err
		}
		res, err := h.Service(r.context(), action, name, opts)
		if err != nil {
			return nil, err
		}
		extra := starlark.StringDict{"name": starlark.String(res.Name), "action": starlark.String(res.Action)}
		if action == hostops.ServiceStatus {
			extra["active"] = starlark.Bool(res.Exit == 0 && res.Signal == "")
		}
		return execStruct("svc_result", res.ExecResult, extra), nil
	}
}
