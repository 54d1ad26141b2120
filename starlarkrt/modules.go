package starlarkrt

import (
	"errors"
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/keyhole-dev/keyhole/hostops"
)

// predeclared returns the names a script sees besides Starlark's universe.
func predeclared(r *run) starlark.StringDict {
	return starlark.StringDict{
		"fs":      fsModule(r),
		"catch":   starlark.NewBuiltin("catch", r.catch),
		"proc":    procModule(r),
		"svc":     svcModule(r),
		"host":    hostModule(r),
		"json":    jsonModule(r),
		"args":    argsValue(r),
		"allowed": starlark.NewBuiltin("allowed", r.allowed),
		"result":  starlark.NewBuiltin("result", r.result),
	}
}

// module makes a named module of builtins.
func module(name string, fns map[string]func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) *starlarkstruct.Module {
	m := &starlarkstruct.Module{Name: name, Members: starlark.StringDict{}}
	for k, fn := range fns {
		m.Members[k] = starlark.NewBuiltin(name+"."+k, fn)
	}
	return m
}

// invalidArgument is the error a builtin returns for arguments of the wrong
// shape; it names the builtin, as go.starlark.net's own errors do.
func invalidArgument(b *starlark.Builtin, err error) error {
	msg := err.Error()
	if prefix := b.Name() + ": "; len(msg) < len(prefix) || msg[:len(prefix)] != prefix {
		msg = prefix + msg
	}
	return &hostops.Error{Kind: hostops.KindInvalidArgument, Message: msg}
}

// errorValue is the struct catch returns for a caught error.
func errorValue(e *Error) *starlarkstruct.Struct {
	policies := make([]starlark.Value, len(e.Policies))
	for i, p := range e.Policies {
		policies[i] = starlark.String(p)
	}
	return starlarkstruct.FromStringDict(starlark.String("error"), starlark.StringDict{
		"kind":     starlark.String(e.Kind),
		"message":  starlark.String(e.Message),
		"action":   starlark.String(e.Action),
		"resource": starlark.String(e.Resource),
		"policies": starlark.NewList(policies),
	})
}

// catch(fn, *args, **kwargs) calls fn and returns (value, None), or
// (None, error) when fn failed with a host operation error. Limits, syntax
// and the script's own errors are not caught.
func (r *run) catch(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) == 0 {
		return nil, invalidArgument(b, errors.New("missing function argument"))
	}
	fn, ok := args[0].(starlark.Callable)
	if !ok {
		return nil, invalidArgument(b, fmt.Errorf("first argument must be callable, got %s", args[0].Type()))
	}
	v, err := starlark.Call(thread, fn, args[1:], kwargs)
	if err == nil {
		return starlark.Tuple{v, starlark.None}, nil
	}
	if r.stopped() != nil {
		return nil, err
	}
	if e := fromHostError(err); e != nil {
		if e.Kind == KindInternal {
			// An operation whose audit line could not be written: the
			// script ends, whatever it catches.
			r.cancel(e)
			return nil, err
		}
		return starlark.Tuple{starlark.None, errorValue(e)}, nil
	}
	return nil, err
}
