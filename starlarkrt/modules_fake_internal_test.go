package starlarkrt

import (
	"context"

	"github.com/keyhole-dev/keyhole/hostops"
)

// The fake host of TestScripts answers allowed() by its own rule; proc,
// svc and host are tested against a real hostops.Host
// (modules_internal_test.go). These methods make it a Host and refuse.

func (f *fakeHost) Allowed(action, path string) (bool, error) {
	if err := f.check(action, path); err != nil {
		if e, ok := err.(*hostops.Error); ok && e.Kind == hostops.KindAccessDenied {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func (f *fakeHost) refuse(action, resource string) error {
	return &hostops.Error{Kind: hostops.KindIOError, Action: action, Resource: resource,
		Message: action + ": the fake host does not do this; see modules_internal_test.go"}
}

func (f *fakeHost) Exec(_ context.Context, argv []string, _ hostops.ExecOptions) (hostops.ExecResult, error) {
	name := ""
	if len(argv) > 0 {
		name = argv[0]
	}
	return hostops.ExecResult{}, f.refuse("exec", name)
}

func (f *fakeHost) Service(_ context.Context, action, name string, _ hostops.ExecOptions) (hostops.ServiceResult, error) {
	return hostops.ServiceResult{}, f.refuse(action, name)
}

func (f *fakeHost) Hostname() (string, error) { return "", f.refuse("read", hostops.HostnameFile) }
func (f *fakeHost) Kernel() (hostops.Kernel, error) {
	return hostops.Kernel{}, f.refuse("read", hostops.OSReleaseFile)
}
func (f *fakeHost) Uptime() (float64, error) { return 0, f.refuse("read", hostops.UptimeFile) }
func (f *fakeHost) Load() (hostops.Load, error) {
	return hostops.Load{}, f.refuse("read", hostops.LoadavgFile)
}
func (f *fakeHost) Memory() (hostops.Memory, error) {
	return hostops.Memory{}, f.refuse("read", hostops.MeminfoFile)
}
func (f *fakeHost) Disk(path string) (hostops.Disk, error) {
	return hostops.Disk{}, f.refuse("stat", path)
}
