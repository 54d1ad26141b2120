package starlarkrt

import (
	"context"
	"regexp"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/keyhole-dev/keyhole/hostops"
)

// FSHost is the part of Host the fs module uses; *hostops.Host implements
// it. Each method is one host operation (two for Rename and Copy), pinned,
// authorized and audited by the host.
type FSHost interface {
	Read(path string, maxBytes int64) ([]byte, error)
	Lines(path string, maxLines int) ([]string, error)
	Tail(ctx context.Context, path string, n int) ([]string, error)
	Sha256(ctx context.Context, path string) (string, error)
	Grep(path string, re *regexp.Regexp, maxMatches int) ([]hostops.Match, error)
	List(path string) ([]hostops.Entry, error)
	Glob(pattern string) ([]string, error)
	Stat(path string) (hostops.Info, error)
	Exists(path string) (bool, error)
	Write(path string, data []byte, mode int64) error
	Append(path string, data []byte) error
	Mkdir(path string, parents bool) error
	Remove(path string) error
	Rename(src, dst string) error
	Chmod(path string, mode int64) error
	Copy(src, dst string) error
}

// fsModule is the fs module: file operations through the session's Host.
func fsModule(r *run) *starlarkstruct.Module {
	return module("fs", map[string]func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error){
		"read":   r.fsRead,
		"cat":    r.fsCat,
		"lines":  r.fsLines,
		"tail":   r.fsTail,
		"sha256": r.fsSha256,
		"grep":   r.fsGrep,
		"list":   r.fsList,
		"glob":   r.fsGlob,
		"stat":   r.fsStat,
		"exists": r.fsExists,
		"write":  r.fsWrite,
		"append": r.fsAppend,
		"mkdir":  r.fsMkdir,
		"remove": r.fsRemove,
		"rename": r.fsRename,
		"chmod":  r.fsChmod,
		"copy":   r.fsCopy,
	})
}

func (r *run) host(b *starlark.Builtin) (Host, error) {
	if r.opts.Host == nil {
		return nil, &hostops.Error{Kind: hostops.KindIOError, Message: b.Name() + ": no host access in this runtime"}
	}
	return r.opts.Host, nil
}

// hostCall unpacks a builtin's arguments into pairs, as
// starlark.UnpackArgs does, and returns the Host the builtin acts on.
func (r *run) hostCall(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, pairs ...any) (Host, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, pairs...); err != nil {
		return nil, invalidArgument(b, err)
	}
	return r.host(b)
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
	h, err := r.hostCall(b, args, kwargs, "path", &path)
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
	h, err := r.hostCall(b, args, kwargs, "path", &path)
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
