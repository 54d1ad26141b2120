//go:build linux

package hostops

import "golang.org/x/sys/unix"

// Copy copies the regular file at src to dst. The source is authorized as
// "read" and read as Read reads it (whole, within the host's read cap);
// the destination is authorized as "write" when it holds a file and
// "create" when it does not, and written as Write writes it: atomically,
// within the host's write cap. Two decision events, source first; a
// refused source stops the operation before the destination is looked at.
// A new destination gets the source's permission bits; a replaced one
// keeps its own, and its owner. With Host.DryRun the source is read and
// nothing is written.
func (h *Host) Copy(src, dst string) error {
	p, err := h.begin(actionRead, src, notRegular)
	if err != nil {
		return err
	}
	data, err := h.readPinned(p, 0, "")
	perm := p.st.Mode & 0o777
	p.close()
	if err != nil {
		return err
	}
	e, err := h.beginEntry(h.writeEntry(len(data), false), dst, "")
	if err != nil {
		return err
	}
	defer e.close()
	if h.DryRun {
		return nil
	}
	var owner *unix.Stat_t
	if e.obj != nil {
		perm, owner = e.obj.st.Mode&0o777, &e.obj.st
	}
	if err := replaceEntry(e, data, perm, owner); err != nil {
		return actError(e.actionOf(), e.path, err)
	}
	return nil
}
