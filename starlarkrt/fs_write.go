package starlarkrt

import (
	"go.starlark.net/starlark"

	"github.com/keyhole-dev/keyhole/hostops"
)

// dataArg converts the data argument of fs.write and fs.append: a string
// or bytes.
func dataArg(b *starlark.Builtin, v starlark.Value) ([]byte, error) {
	switch v := v.(type) {
	case starlark.String:
		return []byte(string(v)), nil
	case starlark.Bytes:
		return []byte(string(v)), nil
	}
	return nil, argError(b, "data must be a string or bytes, got "+v.Type())
}

// modeArg converts a mode argument: an int from 0 to 0o777.
func modeArg(b *starlark.Builtin, v starlark.Value) (int64, error) {
	i, ok := v.(starlark.Int)
	if !ok {
		return 0, argError(b, "mode must be an int, got "+v.Type())
	}
	m, ok := i.Int64()
	if !ok || m < 0 || m > 0o777 {
		return 0, argError(b, "mode must be between 0 and 0o777 (no setuid, setgid or sticky bits), got "+i.String())
	}
	return m, nil
}

// fs.write(path, data, mode=None) replaces the file's contents atomically.
// Without mode a new file gets 0o644 and a replaced one keeps its mode.
func (r *run) fsWrite(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var data, mode starlark.Value = nil, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "data", &data, "mode?", &mode); err != nil {
		return nil, invalidArgument(b, err)
	}
	buf, err := dataArg(b, data)
	if err != nil {
		return nil, err
	}
	m := hostops.KeepMode
	if mode != starlark.None {
		if m, err = modeArg(b, mode); err != nil {
			return nil, err
		}
	}
	h, err := r.host(b)
	if err != nil {
		return nil, err
	}
	return starlark.None, h.Write(path, buf, m)
}

// fs.append(path, data) adds data to the end of the file, creating it if
// it does not exist.
func (r *run) fsAppend(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var data starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "data", &data); err != nil {
		return nil, invalidArgument(b, err)
	}
	buf, err := dataArg(b, data)
	if err != nil {
		return nil, err
	}
	h, err := r.host(b)
	if err != nil {
		return nil, err
	}
	return starlark.None, h.Append(path, buf)
}

// fs.mkdir(path, parents=False) creates a directory; with parents, its
// missing ancestors too, and an existing directory is no error.
func (r *run) fsMkdir(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var parents bool
	h, err := r.hostCall(b, args, kwargs, "path", &path, "parents?", &parents)
	if err != nil {
		return nil, err
	}
	return starlark.None, h.Mkdir(path, parents)
}

// fs.remove(path) removes a file, a symlink or an empty directory.
func (r *run) fsRemove(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	h, err := r.hostCall(b, args, kwargs, "path", &path)
	if err != nil {
		return nil, err
	}
	return starlark.None, h.Remove(path)
}

// fs.rename(src, dst) moves src to dst on one file system.
func (r *run) fsRename(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var src, dst string
	h, err := r.hostCall(b, args, kwargs, "src", &src, "dst", &dst)
	if err != nil {
		return nil, err
	}
	return starlark.None, h.Rename(src, dst)
}

// fs.chmod(path, mode) sets the permission bits of a file or directory.
func (r *run) fsChmod(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var mode starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "mode", &mode); err != nil {
		return nil, invalidArgument(b, err)
	}
	m, err := modeArg(b, mode)
	if err != nil {
		return nil, err
	}
	h, err := r.host(b)
	if err != nil {
		return nil, err
	}
	return starlark.None, h.Chmod(path, m)
}

// fs.copy(src, dst) copies a regular file, writing dst atomically.
func (r *run) fsCopy(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var src, dst string
	h, err := r.hostCall(b, args, kwargs, "src", &src, "dst", &dst)
	if err != nil {
		return nil, err
	}
	return starlark.None, h.Copy(src, dst)
}
