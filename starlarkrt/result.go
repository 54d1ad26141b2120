package starlarkrt

import (
	"go.starlark.net/starlark"
)

// result(value) sets the script's structured result (Result.Value, the
// "result" of the keyhole subsystem's last line) to value, converted as
// json.encode converts it: a function, a set, bytes, a non-string dict
// key, a non-finite float, an int outside 64 bits, nesting deeper than
// MaxJSONDepth is INVALID_ARGUMENT; a value larger than MaxJSONBytes as
// JSON is LIMIT_EXCEEDED. The value is converted when result is called,
// so later changes to a list or dict passed in do not change it. Calling
// result again replaces the value: the last call wins. The value is kept
// whatever the script's exit status. It returns None.
func (r *run) result(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var v starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &v); err != nil {
		return nil, invalidArgument(b, err)
	}
	g, err := toGo(b, v)
	if err != nil {
		return nil, err
	}
	r.value = g
	return starlark.None, nil
}
