//go:build linux

package hostops

import (
	"golang.org/x/sys/unix"
)

// Rename moves the entry at src to dst, on one file system. The source is
// authorized as "rename", the destination as "write" when it holds
// something and "create" when it does not: two decision events, source
// first. A refused source stops the operation before the destination is
// looked at (one event). Neither final component is followed: a symlink is
// moved, or replaced, itself. A directory moves with everything in it.
//
// The rename happens only if both names still hold what was authorized; a
// free destination is never replaced (RENAME_NOREPLACE). A rename across
// file systems is INVALID_ARGUMENT (copy and remove instead). With
// Host.DryRun nothing is moved.
func (h *Host) Rename(src, dst string) error {
	s, err := h.beginEntry(existingEntry(actionRename), src, "")
	if err != nil {
		return err
	}
	defer s.close()
	d, err := h.beginEntry(entryOp{verb: actionWrite, action: writeOrCreate}, dst, "")
	if err != nil {
		return err
	}
	defer d.close()
	if h.DryRun {
		return nil
	}
	if err := s.still(); err != nil {
		return actError(actionRename, s.path, err)
	}
	if err := d.still(); err != nil {
		return actError(d.actionOf(), d.path, err)
	}
	if d.obj == nil {
		err = unix.Renameat2(s.dir.fd, s.name, d.dir.fd, d.name, unix.RENAME_NOREPLACE)
		if err == unix.EEXIST {
			err = errChanged
		}
	} else {
		err = unix.Renameat(s.dir.fd, s.name, d.dir.fd, d.name)
	}
	if err != nil {
		return actError(actionRename, s.path, err)
	}
	if err := syncDir(d.dir); err != nil {
		return actError(actionRename, s.path, err)
	}
	if !sameObject(&s.dir.st, &d.dir.st) {
		if err := syncDir(s.dir); err != nil {
			return actError(actionRename, s.path, err)
		}
	}
	return nil
}
