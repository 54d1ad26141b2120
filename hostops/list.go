//go:build linux

package hostops

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// DefaultMaxListEntries is the most entries List returns when
// Host.MaxListEntries is not set.
const DefaultMaxListEntries = 100_000

// List returns the entries of the directory at path (action "list"),
// sorted by name, without "." and "..". Symlinks in path are followed and
// the directory they lead to is what is authorized; the entries themselves
// are not followed: each is described by an lstat relative to the pinned
// directory, so a symlink entry is Type "symlink" with the length of its
// target as Size. An entry removed while the directory is read is left
// out. A directory with more than the host's cap of entries is
// LIMIT_EXCEEDED; a path that is not a directory is INVALID_ARGUMENT.
func (h *Host) List(path string) ([]Entry, error) {
	_, dir, err := h.listDir(path)
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, len(dir))
	for i, d := range dir {
		if d.ok {
			entries[i] = Entry{Name: d.name, Type: entryType(d.st.Mode), Size: d.st.Size}
		} else {
			// Not stat'ed: the type getdents gave.
			entries[i] = Entry{Name: d.name, Type: direntType(d.typ)}
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries, nil
}

// listDir pins the directory at path and authorizes listing it (one
// decision line), then reads its entries, each with its lstat relative to
// the pinned directory; it returns the directory's canonical path. More
// entries than the host's cap is LIMIT_EXCEEDED.
func (h *Host) listDir(path string) (string, []dirEntry, error) {
	p, err := h.begin(actionList, path, refuseList)
	if err != nil {
		return "", nil, err
	}
	defer p.close()
	fd, err := p.reopen(unix.O_RDONLY | unix.O_DIRECTORY)
	if err != nil {
		return "", nil, sysError(actionList, p.path, err)
	}
	defer unix.Close(fd)
	limit := h.maxList()
	entries, err := readDir(fd, limit)
	if err == errTooMany {
		return "", nil, opError(KindLimitExceeded, actionList, p.path, "more than "+strconv.Itoa(limit)+" entries")
	}
	if err != nil {
		return "", nil, sysError(actionList, p.path, err)
	}
	return p.path, entries, nil
}

func (h *Host) maxList() int {
	if h.MaxListEntries > 0 {
		return h.MaxListEntries
	}
	return DefaultMaxListEntries
}

func refuseList(st *unix.Stat_t) string {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "not a directory"
	}
	return ""
}

// errTooMany: the directory has more entries than the cap.
var errTooMany = errors.New("too many entries")

// dirEntry is one entry of a directory read by readDir.
type dirEntry struct {
	name string
	typ  uint8       // DT_*, from getdents
	st   unix.Stat_t // the entry's lstat, when ok
	ok   bool        // false: the entry exists but could not be stat'ed
}

// readDir reads the entries of the open directory fd, at most limit of
// them, each lstat'ed relative to fd; an entry removed meanwhile is left
// out.
func readDir(fd, limit int) ([]dirEntry, error) {
	var entries []dirEntry
	buf := make([]byte, 32<<10)
	for {
		n, err := retry(func() (int, error) { return unix.ReadDirent(fd, buf) })
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return entries, nil
		}
		for _, d := range parseDirents(buf[:n]) {
			if d.name == "." || d.name == ".." {
				continue
			}
			e := dirEntry{name: d.name, typ: d.typ}
			err := unix.Fstatat(fd, d.name, &e.st, unix.AT_SYMLINK_NOFOLLOW)
			if err == unix.ENOENT {
				continue
			}
			e.ok = err == nil
			if len(entries) == limit {
				return nil, errTooMany
			}
			entries = append(entries, e)
		}
	}
}

// dirent is one record of getdents64.
type dirent struct {
	name string
	typ  uint8 // DT_*
}

// parseDirents decodes linux_dirent64 records: ino u64, off s64,
// reclen u16, type u8, then the NUL-terminated name.
func parseDirents(buf []byte) []dirent {
	const nameOff = 19
	var out []dirent
	for len(buf) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen < nameOff || reclen > len(buf) {
			break
		}
		ino := binary.NativeEndian.Uint64(buf[0:8])
		name := buf[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if ino != 0 {
			out = append(out, dirent{name: string(name), typ: buf[18]})
		}
		buf = buf[reclen:]
	}
	return out
}

func entryType(mode uint32) string {
	switch kind := kindOf(mode); kind {
	case "file", "dir", "symlink":
		return kind
	}
	return "other"
}

func direntType(t uint8) string {
	switch t {
	case unix.DT_REG:
		return "file"
	case unix.DT_DIR:
		return "dir"
	case unix.DT_LNK:
		return "symlink"
	}
	return "other"
}
