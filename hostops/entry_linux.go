//go:build linux

package hostops

// Entries: the operations that change a directory (write, create, mkdir,
// remove, rename) act on a name in a directory, not on an object. The
// directory is pinned like any object (resolve), the name is one component
// without a slash, and every act is an *at syscall relative to the pinned
// directory's descriptor that does not follow a symlink in that name. What
// is authorized is the directory's canonical path joined with the name.

import (
	"errors"
	"strconv"
	"strings"

	"github.com/keyhole-dev/keyhole/authz"
	"golang.org/x/sys/unix"
)

// Action names of the operations that change the host.
const (
	actionWrite  = "write"
	actionCreate = "create"
	actionDelete = "delete"
	actionMkdir  = "mkdir"
	actionRename = "rename"
	actionChmod  = "chmod"
)

var (
	// errChanged: the name no longer holds what was authorized; the
	// operation fails closed rather than act on something else.
	errChanged = errors.New("changed while the operation ran; nothing was done")
	// errDangling: a symlink in the final component leads nowhere.
	// keyhole does not create files through symlinks.
	errDangling = errors.New("is a symlink to a missing object; name its target instead")
	// errNotEmpty: a directory to remove still has entries.
	errNotEmpty = errors.New("directory not empty")
	// errExists: the name is taken.
	errExists = errors.New("file exists")
	// errCrossDevice: a rename between file systems.
	errCrossDevice = errors.New("source and destination are on different file systems; copy and remove instead")
)

// entry is a name in a pinned directory.
type entry struct {
	// dir is the pinned parent directory; nil when there is none to act in
	// (err says why).
	dir *pinned
	// name is the final component: one name, never "", "." or "..".
	name string
	// path is the canonical path authorized: dir's path joined with name,
	// or, when dir is nil, the name of the path as resolve gives it.
	path string
	// obj is what name holds, pinned without following a symlink in name;
	// nil when the name is free.
	obj *pinned
	// err is why there is nothing to act on (ENOENT for a missing parent,
	// ENOTDIR, errDangling, ...).
	err error
	// wantDir: the path ended in a slash, so it must name a directory.
	wantDir bool
}

func (e *entry) close() {
	if e.dir != nil {
		e.dir.close()
	}
	if e.obj != nil {
		e.obj.close()
	}
}

func (e *entry) isDir() bool { return e.obj != nil && e.obj.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// entryPath checks that path (already through checkPath) ends in a name and
// returns it without trailing slashes, or why it cannot be used.
func entryPath(path string, slashOK bool) (trimmed string, wantDir bool, msg string) {
	trimmed = strings.TrimRight(path, "/")
	wantDir = trimmed != path
	if trimmed == "" {
		return "", false, "path must name an entry below /, got " + strconv.Quote(path)
	}
	if wantDir && !slashOK {
		return "", false, "path must not end with a slash, got " + strconv.Quote(path)
	}
	name := trimmed[strings.LastIndexByte(trimmed, '/')+1:]
	if name == "." || name == ".." {
		return "", false, "path must end in a name, not " + strconv.Quote(name)
	}
	return trimmed, wantDir, ""
}

// splitEntry splits a path without trailing slashes into its parent and
// its final name.
func splitEntry(path string) (parent, name string) {
	i := strings.LastIndexByte(path, '/')
	parent, name = path[:i], path[i+1:]
	if parent == "" {
		parent = "/"
	}
	return parent, name
}

// resolveEntry pins the parent directory of path (symlinks and ".." in it
// resolved by the kernel) and what the final name holds. With follow, a
// symlink in the final name is followed: the entry becomes the one that
// holds the symlink's target, named by the target's canonical path, and a
// symlink that leads nowhere is errDangling. Without follow, the symlink
// itself is the object.
func resolveEntry(path string, follow bool) (entry, error) {
	for hop := 0; hop < 2; hop++ {
		parent, name := splitEntry(path)
		tp, err := resolve(parent)
		if err != nil {
			return entry{}, err
		}
		if tp.err != nil || tp.obj == nil {
			if tp.obj != nil {
				tp.obj.close()
			}
			// No parent to act in: name the whole path as Read names a
			// missing one, so the answer is the same whether or not
			// anything exists under a forbidden directory.
			t, err := resolve(path)
			if err != nil {
				return entry{}, err
			}
			if t.obj != nil {
				t.obj.close()
			}
			if t.err == nil {
				t.err = errChanged // created meanwhile
			}
			return entry{path: t.name, err: t.err}, nil
		}
		if tp.obj.st.Mode&unix.S_IFMT != unix.S_IFDIR {
			tp.obj.close()
			return entry{path: join(tp.name, []string{name}), err: unix.ENOTDIR}, nil
		}
		e := entry{dir: tp.obj, name: name, path: join(tp.obj.path, []string{name})}
		fd, err := retry(func() (int, error) {
			return unix.Openat(e.dir.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		})
		if err == unix.ENOENT {
			return e, nil
		}
		if err != nil {
			e.err = err
			return e, nil
		}
		obj := &pinned{fd: fd, path: e.path}
		if err := unix.Fstat(fd, &obj.st); err != nil {
			obj.close()
			e.close()
			return entry{}, err
		}
		if !follow || obj.st.Mode&unix.S_IFMT != unix.S_IFLNK {
			e.obj = obj
			return e, nil
		}
		obj.close()
		link := e.path
		e.close()
		t, err := resolve(link)
		if err != nil {
			return entry{}, err
		}
		if t.err != nil || t.obj == nil {
			if t.obj != nil {
				t.obj.close()
			}
			if t.err == unix.ENOENT || t.err == unix.ENOTDIR || t.err == nil {
				t.err = errDangling
			}
			return entry{path: t.name, err: t.err}, nil
		}
		t.obj.close()
		// The target's canonical path holds no symlink; resolve its entry.
		path = t.name
	}
	// The canonical path of the target was a symlink again: it changed.
	return entry{}, errUnstable
}

// entryOp describes how an operation on an entry is checked.
type entryOp struct {
	// verb is the action named when the path is refused before it is
	// resolved.
	verb string
	// follow follows a symlink in the final name (see resolveEntry).
	follow bool
	// slashOK accepts a trailing slash (the entry must then be a
	// directory).
	slashOK bool
	// missingParentOK lets the operation go ahead when the parent does not
	// exist (mkdir with parents).
	missingParentOK bool
	// existing: the operation acts on what the name holds (delete, the
	// source of rename), so a free name is decided as decideMissing
	// decides a path that names nothing, not as a File to create.
	existing bool
	// action is the action authorized for what the entry holds.
	action func(e *entry) string
	// resource is the resource authorized; nil means entryResource.
	resource func(e *entry) authz.Resource
	// check says, after an allow, why the operation will not act, or nil.
	check func(action string, e *entry) *Error
}

// existingEntry is the entryOp of action on what a name holds (delete, the
// source of rename): a trailing slash is accepted, a symlink is not
// followed, and a free name is NOT_FOUND.
func existingEntry(action string) entryOp {
	return entryOp{
		verb:     action,
		existing: true,
		slashOK:  true,
		action:   func(*entry) string { return action },
		check: func(action string, e *entry) *Error {
			if e.obj == nil {
				return actError(action, e.path, unix.ENOENT)
			}
			return nil
		},
	}
}

// entryResource is what an entry is authorized as: the object it holds
// (a symlink itself, when not followed), or a File that does not exist.
func entryResource(e *entry) authz.Resource {
	if e.obj != nil {
		return resourceOf(target{obj: e.obj, name: e.path})
	}
	return authz.Resource{Kind: authz.KindFile, Path: e.path}
}

// writeOrCreate is "write" for an entry that holds something, "create" for
// a free one.
func writeOrCreate(e *entry) string {
	if e.obj != nil {
		return actionWrite
	}
	return actionCreate
}

// beginEntry is begin for operations on an entry: check path, pin its
// parent and what it holds, authorize, write the one audit event (run).
// argMsg, when set, refuses the operation before anything is looked at (a
// bad argument). The caller acts through the returned entry and closes it.
func (h *Host) beginEntry(op entryOp, path, argMsg string) (*entry, error) {
	var (
		e       entry
		trimmed string
		wantDir bool
	)
	_, err := h.run(operation{
		action: op.verb,
		arg:    path,
		check: func() *Error {
			msg := argMsg
			if msg == "" {
				msg = checkPath(path)
			}
			if msg == "" {
				trimmed, wantDir, msg = entryPath(path, op.slashOK)
			}
			return badInput(op.verb, path, msg)
		},
		resolve: func() (subject, *Error) {
			var err error
			if e, err = resolveEntry(trimmed, op.follow); err != nil {
				return subject{}, sysError(op.verb, trimmed, err)
			}
			e.wantDir = wantDir
			s := subject{action: op.action(&e), name: e.path, unnamed: notNamed(e.err), close: e.close}
			if op.existing && e.obj == nil {
				s.missing = true
			} else if op.resource != nil {
				s.res = op.resource(&e)
			} else {
				s.res = entryResource(&e)
			}
			s.unfit = func() *Error {
				switch {
				case e.err == unix.ENOENT && e.dir == nil && op.missingParentOK:
				case e.err != nil:
					return actError(s.action, e.path, e.err)
				case e.wantDir && e.obj != nil && !e.isDir():
					return actError(s.action, e.path, unix.ENOTDIR)
				case op.check != nil:
					return op.check(s.action, &e)
				}
				return nil
			}
			return s, nil
		},
	})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// still reports whether the entry's name holds what was authorized: the
// same object, or still nothing. It runs right before the act.
func (e *entry) still() error {
	var st unix.Stat_t
	err := unix.Fstatat(e.dir.fd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case e.obj == nil && err == unix.ENOENT:
		return nil
	case e.obj == nil && err == nil, err == unix.ENOENT:
		return errChanged
	case err != nil:
		return err
	case !sameObject(&st, &e.obj.st):
		return errChanged
	}
	return nil
}

// syncDir flushes the directory d, so a new name in it survives a crash.
func syncDir(d *pinned) error {
	fd, err := d.reopen(unix.O_RDONLY | unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

// notRegular is why an object is not a regular file, or "".
func notRegular(st *unix.Stat_t) string {
	switch kind := kindOf(st.Mode); kind {
	case "file":
		return ""
	case "dir":
		return "is a directory"
	default:
		return "is a " + kind + ", not a regular file"
	}
}

// hardLinked says why an in-place change of a regular file with other
// names is refused, or "": the change would reach every name, including
// ones in directories the principal may not touch.
func hardLinked(st *unix.Stat_t) string {
	if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 {
		return "has " + strconv.FormatUint(uint64(st.Nlink), 10) + " hard links; changing it in place would change every one of them"
	}
	return ""
}

// actError is sysError for the errors of operations that change the host.
func actError(action, resource string, err error) *Error {
	switch err {
	case unix.ENOTEMPTY:
		return opError(KindInvalidArgument, action, resource, errNotEmpty.Error())
	case unix.EEXIST:
		return opError(KindInvalidArgument, action, resource, errExists.Error())
	case unix.EXDEV:
		return opError(KindInvalidArgument, action, resource, errCrossDevice.Error())
	case errDangling, errNotEmpty, errExists, errCrossDevice, unix.EISDIR, unix.EINVAL:
		return opError(KindInvalidArgument, action, resource, err.Error())
	case unix.ENOSPC, unix.EDQUOT, unix.EFBIG:
		return opError(KindLimitExceeded, action, resource, err.Error())
	}
	return sysError(action, resource, err)
}
