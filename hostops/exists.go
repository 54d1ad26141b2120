//go:build linux

package hostops

import "errors"

// Exists reports whether path names an object (action "stat", one
// decision event, as Stat). A path the policy forbids is ACCESS_DENIED,
// never false, so the answer does not reveal what exists where the
// principal may not look. Symlinks are followed: a symlink that leads
// nowhere does not exist. Errors other than "not found" (a symlink loop,
// an I/O error) are returned.
func (h *Host) Exists(path string) (bool, error) {
	_, err := h.Stat(path)
	var e *Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &e) && e.Kind == KindNotFound:
		return false, nil
	}
	return false, err
}
