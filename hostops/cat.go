//go:build linux

package hostops

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// FileSender sends a file's bytes to the session's output without the
// caller holding them. The worker passes the descriptor to the server,
// which streams it into the SSH channel; a runtime with no server copies.
type FileSender interface {
	// SendFile sends at most n bytes of f, from its start, and returns how
	// many it sent. Fewer than n with a nil error means f ended first (it
	// shrank). An error that is an *Error (LIMIT_EXCEEDED: the output cap)
	// is returned to the script as is; any other is IO_ERROR. f stays the
	// caller's to close.
	SendFile(f *os.File, name string, n int64) (int64, error)
}

// Cat sends the regular file at path to out (action "read") and returns the
// number of bytes sent. One decision event, as Read.
//
// What is sent is bounded by the size the pinned file had when it was
// authorized (the size the policy saw): a file that grows while it is sent
// is cut there, one that shrinks ends early. It is also bounded by what is
// left of the script's read budget (Counters.MaxRead): when the file is
// larger, exactly the rest of the budget is sent and Cat fails with the
// read limit's LIMIT_EXCEEDED, which ends the script. The bytes sent are
// charged as read. Unlike Read there is no per-file cap: the bytes are
// never held.
//
// A directory, FIFO, socket or device is INVALID_ARGUMENT, as for Read,
// and so is a file on a pseudo file system (procfs, sysfs) whose size says
// nothing of its contents; fs.read reads those.
func (h *Host) Cat(path string, out FileSender) (int64, error) {
	p, err := h.beginCat(path)
	if err != nil {
		return 0, err
	}
	defer p.close()
	fd, err := p.reopen(unix.O_RDONLY)
	if err != nil {
		return 0, sysError(actionRead, p.path, err)
	}
	f := os.NewFile(uintptr(fd), p.path)
	defer f.Close()
	n, capped := p.st.Size, false
	if c := h.Counters; c != nil && c.MaxRead > 0 {
		if left := max(c.MaxRead-c.read.Load(), 0); n > left {
			n, capped = left, true
		}
	}
	sent, err := out.SendFile(f, p.path, n)
	sent = min(max(sent, 0), n)
	if e := h.Counters.chargeRead(actionRead, p.path, sent); e != nil {
		return sent, e
	}
	if err != nil {
		if e, ok := err.(*Error); ok {
			return sent, e
		}
		return sent, opError(KindIOError, actionRead, p.path, "sending the file: "+err.Error())
	}
	if capped && sent == n {
		return sent, h.Counters.exceed(opError(KindLimitExceeded, actionRead, p.path,
			"the script's read limit of "+strconv.FormatInt(h.Counters.MaxRead, 10)+" bytes is exceeded"))
	}
	return sent, nil
}

// beginCat pins path and authorizes reading it, as begin does for Read,
// and also refuses, after an allow, a file whose size is not its length.
func (h *Host) beginCat(path string) (*pinned, error) {
	var t target
	_, e := h.run(operation{
		action: actionRead,
		arg:    path,
		check: func() *Error {
			return badInput(actionRead, path, checkPath(path))
		},
		resolve: func() (subject, *Error) {
			var err error
			if t, err = resolve(path); err != nil {
				return subject{}, sysError(actionRead, path, err)
			}
			s := targetSubject(actionRead, t)
			s.unfit = func() *Error {
				if t.err != nil {
					return sysError(actionRead, t.name, t.err)
				}
				if msg := notRegular(&t.obj.st); msg != "" {
					return opError(KindInvalidArgument, actionRead, t.name, msg)
				}
				if fs := pseudoFS(t.obj.fd); fs != "" {
					return opError(KindInvalidArgument, actionRead, t.name,
						"is on "+fs+", whose file sizes say nothing of their contents; use fs.read")
				}
				return nil
			}
			return s, nil
		},
	})
	if e != nil {
		return nil, e
	}
	return t.obj, nil
}

// pseudoFS names the file system of fd when it is one whose regular files
// report a size unrelated to what a read returns, or "".
func pseudoFS(fd int) string {
	var s unix.Statfs_t
	if unix.Fstatfs(fd, &s) != nil {
		return ""
	}
	switch s.Type {
	case unix.PROC_SUPER_MAGIC:
		return "procfs"
	case unix.SYSFS_MAGIC:
		return "sysfs"
	case unix.DEBUGFS_MAGIC, unix.TRACEFS_MAGIC:
		return "debugfs"
	case unix.CGROUP_SUPER_MAGIC, unix.CGROUP2_SUPER_MAGIC:
		return "cgroupfs"
	case unix.SECURITYFS_MAGIC:
		return "securityfs"
	}
	return ""
}
