package starlarkrt

import (
	"context"
	"regexp"

	"github.com/keyhole-dev/keyhole/hostops"
)

// The fake host answers only read, list and stat (script_internal_test.go);
// the rest of the fs module is tested against a real hostops.Host
// (fs_internal_test.go). These methods make it a Host and refuse.

func (f *fakeHost) unsupported(action, path string) error {
	if err := f.check(action, path); err != nil {
		return err
	}
	return &hostops.Error{Kind: hostops.KindIOError, Action: action, Resource: path,
		Message: action + ": the fake host does not do this; see fs_internal_test.go"}
}

func (f *fakeHost) Lines(path string, _ int) ([]string, error) {
	return nil, f.unsupported("read", path)
}
func (f *fakeHost) Tail(_ context.Context, path string, _ int) ([]string, error) {
	return nil, f.unsupported("read", path)
}
func (f *fakeHost) Sha256(_ context.Context, path string) (string, error) {
	return "", f.unsupported("read", path)
}
func (f *fakeHost) Grep(path string, _ *regexp.Regexp, _ int) ([]hostops.Match, error) {
	return nil, f.unsupported("read", path)
}
func (f *fakeHost) Glob(pattern string) ([]string, error) { return nil, f.unsupported("list", pattern) }
func (f *fakeHost) Exists(path string) (bool, error) {
	_, err := f.Stat(path)
	if e, ok := err.(*hostops.Error); ok && e.Kind == hostops.KindNotFound {
		return false, nil
	}
	return err == nil, err
}
func (f *fakeHost) Write(path string, _ []byte, _ int64) error { return f.unsupported("write", path) }
func (f *fakeHost) Append(path string, _ []byte) error         { return f.unsupported("write", path) }
func (f *fakeHost) Mkdir(path string, _ bool) error            { return f.unsupported("mkdir", path) }
func (f *fakeHost) Remove(path string) error                   { return f.unsupported("delete", path) }
func (f *fakeHost) Rename(src, _ string) error                 { return f.unsupported("rename", src) }
func (f *fakeHost) Chmod(path string, _ int64) error           { return f.unsupported("chmod", path) }
func (f *fakeHost) Copy(src, _ string) error                   { return f.unsupported("read", src) }
