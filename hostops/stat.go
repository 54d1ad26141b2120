//go:build linux

package hostops

import (
	"io/fs"
	"time"

	"golang.org/x/sys/unix"
)

// Stat describes the object at path (action "stat"). Symlinks are
// followed: the target is what is authorized and described, and Info.Path
// is its canonical path. The attributes are those of the pinned object, as
// they were when it was authorized.
func (h *Host) Stat(path string) (Info, error) {
	p, err := h.begin(actionStat, path, nil)
	if err != nil {
		return Info{}, err
	}
	defer p.close()
	return infoOf(p.path, &p.st), nil
}

// infoOf describes st, naming it p.
func infoOf(p string, st *unix.Stat_t) Info {
	return Info{
		Path:    p,
		Type:    kindOf(st.Mode),
		Size:    st.Size,
		Mode:    fs.FileMode(st.Mode) & fs.ModePerm,
		UID:     int64(st.Uid),
		GID:     int64(st.Gid),
		Nlink:   int64(st.Nlink),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
	}
}
