//go:build linux

package hostops

import (
	"strconv"
	"strings"

	"github.com/keyhole-dev/keyhole/authz"
	"golang.org/x/sys/unix"
)

// DirMode is the permission bits Mkdir asks for (the process umask
// applies).
const DirMode = 0o755

// Mkdir creates the directory at path (action "mkdir"; a directory that
// does not exist yet is authorized as Dir::"<path>"). Its parent must exist
// unless parents is set.
//
// With parents, Mkdir works as mkdir -p: the path must not hold "." or ".."
// components; the directory itself is authorized first (one decision,
// whether or not it exists, so a denial never depends on what exists),
// then each missing ancestor, from the top, gets a decision of its own and
// is created; an existing directory at path is no error. Ancestors that
// exist are looked up without a decision of their own: the answer only
// tells which directories above an allowed path exist. A symlink at path
// is followed with parents and is "file exists" without. With Host.DryRun
// everything is authorized and audited and nothing is created.
func (h *Host) Mkdir(path string, parents bool) error {
	argMsg := ""
	if parents && hasDots(path) {
		argMsg = "path must not hold . or .. components with parents, got " + quoteShort(path)
	}
	e, err := h.mkdirEntry(path, parents, argMsg)
	if err != nil {
		return err
	}
	defer e.close()
	if e.obj != nil {
		return nil // exists as a directory (with parents)
	}
	if e.dir == nil {
		// Parents missing: create them, each with its own decision (a dry
		// run decides each and creates none).
		if err := h.mkdirAncestors(e.path); err != nil {
			return err
		}
		if h.DryRun {
			return nil
		}
		e2, err := resolveEntry(e.path, false)
		if err != nil {
			return actError(actionMkdir, e.path, err)
		}
		defer e2.close()
		if e2.err != nil || e2.dir == nil || e2.path != e.path {
			return actError(actionMkdir, e.path, errChanged)
		}
		e = &e2
	}
	if h.DryRun {
		return nil
	}
	if err := mkdirIn(e); err != nil {
		if err == unix.EEXIST && parents && isDirAt(e) {
			return nil
		}
		return actError(actionMkdir, e.path, err)
	}
	return nil
}

// mkdirEntry resolves and authorizes one mkdir.
func (h *Host) mkdirEntry(path string, parents bool, argMsg string) (*entry, error) {
	return h.beginEntry(entryOp{
		verb:            actionMkdir,
		follow:          parents,
		slashOK:         true,
		missingParentOK: parents,
		action:          func(*entry) string { return actionMkdir },
		resource: func(e *entry) authz.Resource {
			if e.obj != nil {
				return entryResource(e)
			}
			return authz.Resource{Kind: authz.KindDir, Path: e.path}
		},
		check: func(action string, e *entry) *Error {
			if e.obj != nil && (!parents || !e.isDir()) {
				return opError(KindInvalidArgument, action, e.path, errExists.Error())
			}
			return nil
		},
	}, path, argMsg)
}

// mkdirAncestors creates the missing directories above path, top down,
// each authorized on its own.
func (h *Host) mkdirAncestors(path string) error {
	comps := split(path)
	creating := false
	for i := 1; i < len(comps); i++ {
		anc := "/" + strings.Join(comps[:i], "/")
		if !creating && isCanonicalDir(anc) {
			continue
		}
		creating = true
		e, err := h.mkdirEntry(anc, true, "")
		if err != nil {
			return err
		}
		if e.obj == nil && !h.DryRun {
			err = mkdirIn(e)
			if err == unix.EEXIST && isDirAt(e) {
				err = nil
			}
		}
		name := e.path
		e.close()
		if err != nil {
			return actError(actionMkdir, name, err)
		}
	}
	return nil
}

func mkdirIn(e *entry) error {
	if e.dir == nil {
		return unix.ENOENT
	}
	if err := unix.Mkdirat(e.dir.fd, e.name, DirMode); err != nil {
		return err
	}
	return syncDir(e.dir)
}

// isDirAt reports whether the entry's name now holds a directory.
func isDirAt(e *entry) bool {
	var st unix.Stat_t
	return e.dir != nil && unix.Fstatat(e.dir.fd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
		st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// isCanonicalDir reports whether path is a directory reached without a
// symlink or "..": its own canonical path.
func isCanonicalDir(path string) bool {
	t, err := resolve(path)
	if err != nil || t.obj == nil {
		return false
	}
	defer t.obj.close()
	return t.err == nil && t.obj.st.Mode&unix.S_IFMT == unix.S_IFDIR && t.name == path
}

// hasDots reports whether path holds a "." or ".." component.
func hasDots(path string) bool {
	for _, c := range strings.Split(path, "/") {
		if c == "." || c == ".." {
			return true
		}
	}
	return false
}

// quoteShort quotes path, cut to maxShown bytes.
func quoteShort(path string) string {
	if len(path) > maxShown {
		path = path[:maxShown] + "..."
	}
	return strconv.Quote(path)
}
