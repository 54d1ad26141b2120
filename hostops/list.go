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
	p, err := h.begin(actionList, path, refuseList)
	if err != nil {
		return nil, err
	}
	defer p.close()
	fd, err := p.reopen(unix.O_RDONLY | unix.O_DIRECTORY)
	if err != nil {
		return nil, sysError(actionList, p.path, err)
	}
	defer unix.Close(fd)
	limit := h.maxList()
	entries, err := readDir(fd, limit)
	if err == errTooMany {
		return nil, opError(KindLimitExceeded, actionList, p.path, "more than "+strconv.Itoa(limit)+" entries")
	}
	if err != nil {
		return nil, sysError(actionList, p.path, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries, nil
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

// readDir reads the entries of the open directory fd, at most limit of them.
func readDir(fd, limit int) ([]Entry, error) {
	var entries []Entry
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
			e, ok := describe(fd, d)
			if !ok {
				continue
			}
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

// describe lstats entry d of the directory fd. ok is false when the entry
// has gone. An entry that cannot be stat'ed keeps the type getdents gave.
func describe(fd int, d dirent) (Entry, bool) {
	var st unix.Stat_t
	err := unix.Fstatat(fd, d.name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return Entry{}, false
	}
	if err != nil {
		return Entry{Name: d.name, Type: direntType(d.typ)}, true
	}
	return Entry{Name: d.name, Type: entryType(st.Mode), Size: st.Size}, true
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
