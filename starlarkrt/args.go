package starlarkrt

import (
	"go.starlark.net/starlark"

	"github.com/keyhole-dev/keyhole/hostops"
)

// argsValue is the predeclared "args": Options.Args as a frozen dict
// (nested lists and dicts frozen too), keys sorted; JSON integers are ints,
// other numbers floats. Empty when the request has no arguments. Arguments
// nested deeper than MaxJSONDepth, or of a type JSON does not produce,
// stop the script before it starts with INVALID_ARGUMENT.
func argsValue(r *run) starlark.Value {
	d := starlark.NewDict(0)
	if len(r.opts.Args) > 0 {
		v, err := fromGo(r.opts.Args, 0)
		if err != nil {
			r.setupErr = &Error{Kind: hostops.KindInvalidArgument, Message: "args: " + err.Error()}
		} else {
			d = v.(*starlark.Dict)
		}
	}
	d.Freeze()
	return d
}
