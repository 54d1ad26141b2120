//go:build linux

package hostops

import (
	"golang.org/x/sys/unix"
)

// Remove removes the file or empty directory at path (action "delete"). A
// symlink in the final component is removed itself, not followed, and is
// what is authorized. A directory with entries is INVALID_ARGUMENT; a
// trailing slash asks for a directory. The name is removed only if it
// still holds the object that was authorized; removing one name of a file
// with several hard links leaves the others. With Host.DryRun nothing is
// removed.
func (h *Host) Remove(path string) error {
	e, err := h.beginEntry(existingEntry(actionDelete), path, "")
	if err != nil {
		return err
	}
	defer e.close()
	if h.DryRun {
		return nil
	}
	flags := 0
	if e.isDir() {
		flags = unix.AT_REMOVEDIR
	}
	if err := e.still(); err != nil {
		return actError(actionDelete, e.path, err)
	}
	if err := unix.Unlinkat(e.dir.fd, e.name, flags); err != nil {
		return actError(actionDelete, e.path, err)
	}
	if err := syncDir(e.dir); err != nil {
		return actError(actionDelete, e.path, err)
	}
	return nil
}
