//go:build linux

package hostops

// Operations whose bytes move in pieces rather than in one buffer, for
// transports that read and write files by offset (sftp): a read handle on
// an authorized file, an upload that becomes the file atomically when it
// is committed, the times of a file, and a directory listing that leaves
// out what the principal may not stat.
// Each is one operation: pinned, authorized and audited once, when it
// starts, like every other.

import (
	"errors"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ReadStream is an open, authorized regular file read by offset. Every
// byte it returns is charged to Host.Counters; Host.MaxReadBytes does not
// apply (the bytes are never held at once). Safe for concurrent use.
type ReadStream struct {
	h    *Host
	f    *os.File
	path string
	size int64
}

// StreamRead opens the regular file at path for reading by offset (action
// "read"), as Read pins, authorizes and checks it. The caller closes it.
func (h *Host) StreamRead(path string) (*ReadStream, error) {
	p, err := h.begin(actionRead, path, notRegular)
	if err != nil {
		return nil, err
	}
	defer p.close()
	fd, err := p.reopen(unix.O_RDONLY)
	if err != nil {
		return nil, sysError(actionRead, p.path, err)
	}
	return &ReadStream{h: h, f: os.NewFile(uintptr(fd), p.path), path: p.path, size: p.st.Size}, nil
}

// Path is the canonical path of the file that was authorized.
func (r *ReadStream) Path() string { return r.path }

// Size is the file's size when it was authorized.
func (r *ReadStream) Size() int64 { return r.size }

// ReadAt reads from the authorized file at off. Past the session's read
// budget it fails with the LIMIT_EXCEEDED error (Counters).
func (r *ReadStream) ReadAt(p []byte, off int64) (int, error) {
	c := r.h.Counters
	if e := c.Exceeded(); e != nil {
		return 0, e
	}
	if want := c.readWant(int64(len(p))); want < int64(len(p)) {
		p = p[:max(want, 1)]
	}
	n, err := r.f.ReadAt(p, off)
	if e := c.chargeRead(actionRead, r.path, int64(n)); e != nil {
		return 0, e
	}
	if err != nil && err != io.EOF {
		return n, sysError(actionRead, r.path, unwrapPathError(err))
	}
	return n, err
}

// Close closes the file.
func (r *ReadStream) Close() error { return r.f.Close() }

// Upload is the new content of a file being written by offset. It becomes
// the file at its path only when Commit succeeds, atomically, as Write
// replaces a file; Abort (or a Commit that fails) leaves the old file and
// no temporary file (the content is an unnamed O_TMPFILE file where the
// file system has them, see TempPrefix). Every byte written is charged to
// Host.Counters before it is written. Safe for concurrent use.
type Upload struct {
	h     *Host
	mu    sync.Mutex
	e     *entry
	c     *newContent
	perm  uint32
	owner *unix.Stat_t
	end   int64 // the highest offset written
	done  bool
}

// UploadFlags say how StartUpload treats a file that exists.
type UploadFlags struct {
	// Exclusive refuses a path that names a file already.
	Exclusive bool
	// Truncate starts the new content empty. Without it the new content
	// starts as a copy of the existing file's (made on the server, never
	// returned), so writes by offset change it as writes in place would;
	// the file is still replaced atomically on Commit.
	Truncate bool
	// CreateMode, when set, is the permission bits of a file the upload
	// creates (masked to 0o777); a file replaced keeps its own (or gets
	// the mode StartUpload is given).
	CreateMode int64
}

// StartUpload begins the replacement of the file at path (action "write"
// on the file when path names one, "create" on the path when it does not;
// symlinks are followed as Write follows them). mode is the new file's
// permission bits, or KeepMode to keep those of the file replaced (a new
// file then gets DefaultFileMode). Only regular files are replaced. With
// Host.DryRun the upload takes the bytes and Commit does nothing.
func (h *Host) StartUpload(path string, mode int64, flags UploadFlags) (*Upload, error) {
	op := entryOp{verb: actionWrite, follow: true, action: writeOrCreate,
		check: func(action string, e *entry) *Error {
			if e.obj == nil {
				return nil
			}
			if msg := notRegular(&e.obj.st); msg != "" {
				return opError(KindInvalidArgument, action, e.path, msg)
			}
			if flags.Exclusive {
				return opError(KindInvalidArgument, action, e.path, errExists.Error())
			}
			return nil
		}}
	e, err := h.beginEntry(op, path, checkMode(actionWrite, mode))
	if err != nil {
		return nil, err
	}
	u := &Upload{h: h, e: e, perm: DefaultFileMode}
	if e.obj != nil {
		u.perm, u.owner = e.obj.st.Mode&0o777, &e.obj.st
	}
	if e.obj == nil && flags.CreateMode > 0 {
		u.perm = uint32(flags.CreateMode & 0o777)
	}
	if mode != KeepMode {
		u.perm = uint32(mode)
	}
	if h.DryRun {
		return u, nil
	}
	c, cerr := createIn(e.dir)
	if cerr != nil {
		e.close()
		return nil, actError(e.actionOf(), e.path, cerr)
	}
	u.c = c
	if e.obj != nil && !flags.Truncate {
		if err := copyContent(e.obj, c.f); err != nil {
			c.abort()
			e.close()
			return nil, actError(e.actionOf(), e.path, err)
		}
		u.end = e.obj.st.Size
	}
	return u, nil
}

// copyContent copies the pinned regular file p into f (copy_file_range
// where the file system has it).
func copyContent(p *pinned, f *os.File) error {
	fd, err := p.reopen(unix.O_RDONLY)
	if err != nil {
		return err
	}
	src := os.NewFile(uintptr(fd), p.path)
	defer src.Close()
	if _, err := io.Copy(f, src); err != nil {
		return unwrapPathError(err)
	}
	return nil
}

// Truncate sets the size of the new content.
func (u *Upload) Truncate(size int64) error {
	action := u.e.actionOf()
	if size < 0 {
		return opError(KindInvalidArgument, action, u.e.path, "negative size")
	}
	if c := u.h.Counters; c != nil && c.MaxWrite > 0 && size > c.MaxWrite {
		return c.exceed(opError(KindLimitExceeded, action, u.e.path,
			"the write limit of "+strconv.FormatInt(c.MaxWrite, 10)+" bytes would be exceeded"))
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return opError(KindInvalidArgument, action, u.e.path, "upload already ended")
	}
	u.end = size
	if u.c == nil {
		return nil
	}
	if err := u.c.f.Truncate(size); err != nil {
		return actError(action, u.e.path, unwrapPathError(err))
	}
	return nil
}

// Path is the canonical path the upload replaces or creates.
func (u *Upload) Path() string { return u.e.path }

// WriteAt writes p at off into the new content.
func (u *Upload) WriteAt(p []byte, off int64) (int, error) {
	action := u.e.actionOf()
	if off < 0 {
		return 0, opError(KindInvalidArgument, action, u.e.path, "negative offset")
	}
	c := u.h.Counters
	if c != nil && c.MaxWrite > 0 && off+int64(len(p)) > c.MaxWrite {
		return 0, c.exceed(opError(KindLimitExceeded, action, u.e.path,
			"the write limit of "+strconv.FormatInt(c.MaxWrite, 10)+" bytes would be exceeded"))
	}
	if e := c.chargeWrite(action, u.e.path, int64(len(p))); e != nil {
		return 0, e
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return 0, opError(KindInvalidArgument, action, u.e.path, "upload already ended")
	}
	u.end = max(u.end, off+int64(len(p)))
	if u.c == nil {
		return len(p), nil // dry run
	}
	n, err := u.c.f.WriteAt(p, off)
	if err != nil {
		return n, actError(action, u.e.path, unwrapPathError(err))
	}
	return n, nil
}

// Commit makes the content written the file at the upload's path: the
// path holds the old content or the new, never a mix. It fails, and
// changes nothing, if the name no longer holds what was authorized.
func (u *Upload) Commit() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return nil
	}
	u.done = true
	defer u.e.close()
	if u.c == nil {
		return nil
	}
	action := u.e.actionOf()
	if err := u.c.finish(u.perm, u.owner); err != nil {
		u.c.abort()
		return actError(action, u.e.path, err)
	}
	if err := commitContent(u.e, u.c); err != nil {
		return actError(action, u.e.path, err)
	}
	return nil
}

// Abort drops the content written; the file at the path is untouched.
func (u *Upload) Abort() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return
	}
	u.done = true
	if u.c != nil {
		u.c.abort()
	}
	u.e.close()
}

// SetTimes sets the access and modification times of the file or
// directory at path (action "write": the times are part of what a write
// changes). Symlinks are followed and the target is authorized and
// changed, through the pinned descriptor. FIFOs, sockets, devices and
// regular files with more than one hard link are INVALID_ARGUMENT, as for
// Chmod. With Host.DryRun nothing changes.
func (h *Host) SetTimes(path string, atime, mtime time.Time) error {
	p, err := h.begin(actionWrite, path, refuseChmod)
	if err != nil {
		return err
	}
	defer p.close()
	if h.DryRun {
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, procSelfFD+strconv.Itoa(p.fd), ts, 0); err != nil {
		return actError(actionWrite, p.path, err)
	}
	return nil
}

// Visible is one entry of ListVisible: its name and its own attributes
// (not followed; Info.Path is the entry's path in the listed directory).
type Visible struct {
	Name string
	Info Info
}

// ListVisible lists the directory at path as List does (action "list",
// one decision and one audit line), and describes each entry by lstat,
// leaving out every entry the policy would not let the principal "stat":
// each entry is decided, with no audit line of its own, as the File or Dir
// at its path with its own attributes. An entry whose name is not
// canonical (a symlink) is decided at its own path, as Remove names it.
func (h *Host) ListVisible(path string) ([]Visible, error) {
	dir, entries, err := h.listDir(path)
	if err != nil {
		return nil, err
	}
	now := h.now()
	out := make([]Visible, 0, len(entries))
	for _, d := range entries {
		if !d.ok {
			continue // not describable: not shown
		}
		full := path2(dir, d.name)
		res := resourceOf(target{obj: &pinned{st: d.st}, name: full})
		if allow, _, _ := h.decide(actionStat, res, now); !allow {
			continue
		}
		out = append(out, Visible{Name: d.name, Info: infoOf(full, &d.st)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// path2 joins a canonical directory path and a name.
func path2(dir, name string) string { return path.Join(dir, name) }

// IsKind reports whether err is a hostops error of kind.
func IsKind(err error, kind string) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}
