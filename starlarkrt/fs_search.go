package starlarkrt

import (
	"regexp"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/keyhole-dev/keyhole/hostops"
)

// maxPatternBytes bounds the regular expression fs.grep compiles.
const maxPatternBytes = 4096

// argError is an INVALID_ARGUMENT error naming builtin b.
func argError(b *starlark.Builtin, msg string) error {
	return &hostops.Error{Kind: hostops.KindInvalidArgument, Message: b.Name() + ": " + msg}
}

func stringList(ss []string) *starlark.List {
	out := make([]starlark.Value, len(ss))
	for i, s := range ss {
		out[i] = starlark.String(s)
	}
	return starlark.NewList(out)
}

// fs.lines(path, max_lines=0) returns the file's lines without their
// newlines; with max_lines > 0, at most that many from the start.
func (r *run) fsLines(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var maxLines int
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "max_lines?", &maxLines); err != nil {
		return nil, invalidArgument(b, err)
	}
	if maxLines < 0 {
		return nil, argError(b, "max_lines must not be negative")
	}
	h, err := r.host(b)
	if err != nil {
		return nil, err
	}
	lines, err := h.Lines(path, maxLines)
	if err != nil {
		return nil, err
	}
	return stringList(lines), nil
}

// fs.tail(path, n=10) returns the file's last n lines; it stops when the
// script is cancelled or out of time.
func (r *run) fsTail(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	n := 10
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "n?", &n); err != nil {
		return nil, invalidArgument(b, err)
	}
	if n <= 0 {
		return nil, argError(b, "n must be positive")
	}
	h, err := r.host(b)
	if err != nil {
		return nil, err
	}
	lines, err := h.Tail(r.context(), path, n)
	if err != nil {
		return nil, err
	}
	return stringList(lines), nil
}

// fs.grep(path, pattern, max_matches=1000) returns the lines that match
// the RE2 pattern as structs with line (from 1) and text.
func (r *run) fsGrep(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path, pattern string
	maxMatches := hostops.DefaultMaxMatches
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "pattern", &pattern, "max_matches?", &maxMatches); err != nil {
		return nil, invalidArgument(b, err)
	}
	if maxMatches <= 0 {
		return nil, argError(b, "max_matches must be positive")
	}
	if len(pattern) > maxPatternBytes {
		return nil, argError(b, "pattern is longer than 4096 bytes")
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, argError(b, "bad pattern: "+err.Error())
	}
	h, err := r.host(b)
	if err != nil {
		return nil, err
	}
	matches, err := h.Grep(path, re, maxMatches)
	if err != nil {
		return nil, err
	}
	out := make([]starlark.Value, len(matches))
	for i, m := range matches {
		out[i] = starlarkstruct.FromStringDict(starlark.String("match"), starlark.StringDict{
			"line": starlark.MakeInt64(m.Line),
			"text": starlark.String(m.Text),
		})
	}
	return starlark.NewList(out), nil
}

// fs.glob(pattern) returns the sorted paths that match pattern, listing
// every directory it visits.
func (r *run) fsGlob(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pattern string
	h, err := r.hostCall(b, args, kwargs, "pattern", &pattern)
	if err != nil {
		return nil, err
	}
	paths, err := h.Glob(pattern)
	if err != nil {
		return nil, err
	}
	return stringList(paths), nil
}

// fs.exists(path) reports whether path names something; a forbidden path
// is ACCESS_DENIED, not False.
func (r *run) fsExists(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	h, err := r.hostCall(b, args, kwargs, "path", &path)
	if err != nil {
		return nil, err
	}
	ok, err := h.Exists(path)
	if err != nil {
		return nil, err
	}
	return starlark.Bool(ok), nil
}

// fs.sha256(path) returns the SHA-256 of the file's contents as 64
// lower-case hex digits, computed on the host (action "read").
func (r *run) fsSha256(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	h, err := r.hostCall(b, args, kwargs, "path", &path)
	if err != nil {
		return nil, err
	}
	sum, err := h.Sha256(r.context(), path)
	if err != nil {
		return nil, err
	}
	return starlark.String(sum), nil
}
