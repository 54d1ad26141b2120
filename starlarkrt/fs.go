package starlarkrt

import (
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/keyhole-dev/keyhole/hostops"
)

// fsModule is the fs module: file operations through the session's Host.
func fsModule(r *run) *starlarkstruct.Module {
	return module("fs", map[string]func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error){
		"read": r.fsRead,
		"list": r.fsList,
		"stat": r.fsStat,
	})
}

func (r *run) host(b *starlark.Builtin) (Host, error) {
	if r.opts.Host == nil {
		return nil, &hostops.Error{Kind: hostops.KindIOError, Message: b.Name() + ": no host access in this runtime"}
	}
	return r.opts.Host, nil
}

// fs.read(path, max_bytes=0) returns the file's contents as a string.
func (r *run) fsRead(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var maxBytes int64
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "max_bytes?", &maxBytes); err != nil {
		return nil, invalidArgument(b, err)
	}
	if maxBytes < 0 {
		return nil, &hostops.Error{Kind: hostops.KindInvalidArgument, Message: b.Name() + ": max_bytes must not be negative"}
	}
	h, err := r.host(b)
	if err != nil {
		return nil, err
	}
	data, err := h.Read(path, maxBytes)
	if err != nil {
		return nil, err
	}
	return starlark.String(data), nil
}

// fs.list(path) returns the directory's entries, sorted by name, as
// structs with name, type and size.
func (r *run) fsList(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path); err != nil {
		return nil, invalidArgument(b, err)
	}
	h, err := r.host(b)
	if err != nil {
		return nil, err
	}
	entries, err := h.List(path)
	if err != nil {
		return nil, err
	}
	out := make([]starlark.Value, len(entries))
	for i, e := range entries {
		out[i] = starlarkstruct.FromStringDict(starlark.String("entry"), starlark.StringDict{
			"name": starlark.String(e.Name),
			"type": starlark.String(e.Type),
			"size": starlark.MakeInt64(e.Size),
		})
	}
	return starlark.NewList(out), nil
}

// fs.stat(path) describes the file path names (symlinks followed).
func (r *run) fsStat(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path); err != nil {
		return nil, invalidArgument(b, err)
	}
	h, err := r.host(b)
	if err != nil {
		return nil, err
	}
	fi, err := h.Stat(path)
	if err != nil {
		return nil, err
	}
	return starlarkstruct.FromStringDict(starlark.String("stat"), starlark.StringDict{
		"path":  starlark.String(fi.Path),
		"type":  starlark.String(fi.Type),
		"size":  starlark.MakeInt64(fi.Size),
		"mode":  starlark.MakeInt64(int64(fi.Mode.Perm())),
		"uid":   starlark.MakeInt64(fi.UID),
		"gid":   starlark.MakeInt64(fi.GID),
		"nlink": starlark.MakeInt64(fi.Nlink),
		"mtime": starlark.MakeInt64(fi.ModTime.Unix()),
	}), nil
}
