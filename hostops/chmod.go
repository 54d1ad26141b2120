//go:build linux

package hostops

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// Chmod sets the permission bits of the file or directory at path (action
// "chmod"). mode is 0 to 0o777: setuid, setgid and sticky bits are
// INVALID_ARGUMENT, refused before anything is looked at. Symlinks are
// followed and the target is authorized and changed. Only regular files
// and directories are changed: a FIFO, socket or device is
// INVALID_ARGUMENT (making a device node writable is no configuration
// change), and so is a regular file with more than one hard link, whose
// other names may lie where the principal may not go. The change goes
// through the pinned descriptor. With Host.DryRun nothing changes.
func (h *Host) Chmod(path string, mode int64) error {
	p, err := h.beginArg(actionChmod, path, checkMode(actionChmod, mode), refuseChmod)
	if err != nil {
		return err
	}
	defer p.close()
	if h.DryRun {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(p.fd, &st); err != nil {
		return actError(actionChmod, p.path, err)
	}
	if msg := refuseChmod(&st); msg != "" {
		return opError(KindInvalidArgument, actionChmod, p.path, msg)
	}
	// An O_PATH descriptor cannot be fchmod'ed; its /proc magic link leads
	// to the pinned inode and nowhere else.
	if err := unix.Fchmodat(unix.AT_FDCWD, procSelfFD+strconv.Itoa(p.fd), uint32(mode), 0); err != nil {
		return actError(actionChmod, p.path, err)
	}
	return nil
}

func refuseChmod(st *unix.Stat_t) string {
	switch kind := kindOf(st.Mode); kind {
	case "file":
		return hardLinked(st)
	case "dir":
		return ""
	default:
		return "is a " + kind + "; only files and directories are changed"
	}
}
