package starlarkrt

import (
	"go.starlark.net/starlark"
)

// PolicyHost is the part of Host that allowed() uses; *hostops.Host
// implements it.
type PolicyHost interface {
	Allowed(action, target string) (bool, error)
}

// allowed(action, path) asks the policy whether action on path (a program
// for "exec", a service name for the service actions) would be allowed,
// without doing it, and returns a bool. The question is resolved as the
// operation would resolve it and is audited as a decision
// (hostops.Host.Allowed). An unknown action or a malformed path is
// INVALID_ARGUMENT.
func (r *run) allowed(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var action, target string
	h, err := r.hostCall(b, args, kwargs, "action", &action, "path", &target)
	if err != nil {
		return nil, err
	}
	ok, err := h.Allowed(action, target)
	if err != nil {
		return nil, err
	}
	return starlark.Bool(ok), nil
}
