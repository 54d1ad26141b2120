//go:build linux

package hostops

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// DefaultMaxWriteBytes is the most one Write, Append or Copy moves when
// Host.MaxWriteBytes is not set: 64 MiB.
const DefaultMaxWriteBytes int64 = 64 << 20

// KeepMode, as the mode of Write, keeps the permission bits of the file
// replaced, and gives a new file DefaultFileMode.
const KeepMode int64 = -1

// DefaultFileMode is the permission bits of a file Write or Append creates
// when no mode is given.
const DefaultFileMode = 0o644

// Write replaces the contents of the file at path with data, atomically:
// the path holds the old contents or the new ones, never a mix, even if the
// process is killed (see TempPrefix for the one exception). The action is
// "write" on the file when path names one, "create" on the path when it
// does not.
//
// mode is the new file's permission bits, 0 to 0o777 (setuid, setgid and
// sticky bits are INVALID_ARGUMENT), or KeepMode. A replaced file keeps its
// owner and group where this process may set them.
//
// A symlink in the final component is followed: its target is authorized
// and replaced (the symlink stays). A symlink that leads nowhere is
// INVALID_ARGUMENT after an allow: keyhole does not create files through
// symlinks. The parent directory must exist. Only regular files are
// replaced: a directory, FIFO, socket or device is INVALID_ARGUMENT. A file
// with several hard links is replaced by a new file at this name only; its
// other names keep the old contents. data longer than the host's cap
// (Host.MaxWriteBytes) is LIMIT_EXCEEDED. With Host.DryRun nothing is
// written.
func (h *Host) Write(path string, data []byte, mode int64) error {
	e, err := h.beginEntry(h.writeEntry(len(data), false), path, checkMode(actionWrite, mode))
	if err != nil {
		return err
	}
	defer e.close()
	if h.DryRun {
		return nil
	}
	perm, owner := uint32(DefaultFileMode), (*unix.Stat_t)(nil)
	if e.obj != nil {
		perm, owner = e.obj.st.Mode&0o777, &e.obj.st
	}
	if mode != KeepMode {
		perm = uint32(mode)
	}
	if err := replaceEntry(e, data, perm, owner); err != nil {
		return actError(e.actionOf(), e.path, err)
	}
	return nil
}

// Append adds data to the end of the file at path. An existing file
// (action "write") is appended to in place, through the descriptor that was
// authorized; a missing one (action "create") is created as Write creates
// it, with DefaultFileMode. Symlinks are followed as Write follows them.
// Appending to a file with more than one hard link is INVALID_ARGUMENT: the
// change would reach every name of the file, including ones the principal
// may not touch. Only regular files are appended to. With Host.DryRun
// nothing is written.
func (h *Host) Append(path string, data []byte) error {
	e, err := h.beginEntry(h.writeEntry(len(data), true), path, "")
	if err != nil {
		return err
	}
	defer e.close()
	if h.DryRun {
		return nil
	}
	if e.obj == nil {
		if err := replaceEntry(e, data, DefaultFileMode, nil); err != nil {
			return actError(actionCreate, e.path, err)
		}
		return nil
	}
	if err := appendTo(e.obj, data); err != nil {
		return actError(actionWrite, e.path, err)
	}
	return nil
}

// appendTo appends data to the pinned regular file p and flushes it.
func appendTo(p *pinned, data []byte) error {
	fd, err := p.reopen(unix.O_WRONLY | unix.O_APPEND | unix.O_NONBLOCK)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if msg := notRegular(&st) + hardLinked(&st); msg != "" {
		return errChanged
	}
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return unix.Fsync(fd)
}

func (h *Host) maxWrite() int64 {
	if h.MaxWriteBytes > 0 {
		return h.MaxWriteBytes
	}
	return DefaultMaxWriteBytes
}

// writeEntry is the entryOp of writing n bytes to a path (Write, Append,
// the destination of Copy): a symlink is followed, and the entry is
// checked by checkWrite.
func (h *Host) writeEntry(n int, inPlace bool) entryOp {
	return entryOp{verb: actionWrite, follow: true, action: writeOrCreate, check: h.checkWrite(n, inPlace)}
}

// checkWrite refuses, after an allow, to write n bytes to an entry that
// holds anything but a regular file (and, inPlace, one with other hard
// links), or more than the host's cap, and charges the n bytes to the
// script's write budget (Host.Counters).
func (h *Host) checkWrite(n int, inPlace bool) func(string, *entry) *Error {
	return func(action string, e *entry) *Error {
		if e.obj != nil {
			if msg := notRegular(&e.obj.st); msg != "" {
				return opError(KindInvalidArgument, action, e.path, msg)
			}
			if msg := hardLinked(&e.obj.st); inPlace && msg != "" {
				return opError(KindInvalidArgument, action, e.path, msg)
			}
		}
		if limit := h.maxWrite(); int64(n) > limit {
			return opError(KindLimitExceeded, action, e.path, "data is larger than the write limit of "+strconv.FormatInt(limit, 10)+" bytes")
		}
		if h.DryRun {
			return nil
		}
		// Charged before the act: past the script's budget, nothing is
		// written.
		if ce := h.Counters.chargeWrite(action, e.path, int64(n)); ce != nil {
			return ce
		}
		return nil
	}
}

// checkMode says why mode is not a mode an operation may set, or "".
func checkMode(action string, mode int64) string {
	if mode == KeepMode && action == actionWrite {
		return ""
	}
	if mode < 0 || mode > 0o777 {
		return "mode must be between 0 and 0o777 (no setuid, setgid or sticky bits), got 0o" + strconv.FormatInt(mode, 8)
	}
	return ""
}

// actionOf is the action an entry was authorized for by writeOrCreate.
func (e *entry) actionOf() string { return writeOrCreate(e) }
