//go:build linux

package hostops

// Paths that name no object to act on: a missing one is decided so that
// the answer does not depend on whether, or as what, it exists; one that
// does not name the object it reaches (a /proc magic link) is never
// logged as allowed.

import (
	"time"

	"github.com/keyhole-dev/keyhole/authz"
)

// decideMissing decides action on path, which names nothing. Had it
// existed it would have been a File or a Dir, and a policy may name either
// (`resource in Dir::"/srv/later"` covers Dir::"/srv/later" but not
// File::"/srv/later"), so both are asked:
//
//   - a forbid (or an evaluation error) of either one denies, so a missing
//     path is denied wherever the object, file or directory, would be;
//   - otherwise a permit of either one allows, and the operation finds
//     nothing (NOT_FOUND), wherever a directory or a file there would be
//     allowed;
//   - otherwise no policy permits it.
//
// The decision returned is the one that decided, with its policies.
func (h *Host) decideMissing(action, path string, now time.Time) (bool, authz.Decision, string) {
	fa, fd, fr := h.decide(action, authz.Resource{Kind: authz.KindFile, Path: path}, now)
	da, dd, dr := h.decide(action, authz.Resource{Kind: authz.KindDir, Path: path}, now)
	forbidden := func(allow bool, dec authz.Decision) bool {
		return !allow && (len(dec.Policies) > 0 || len(dec.Errors) > 0)
	}
	switch {
	case forbidden(fa, fd):
		return fa, fd, fr
	case forbidden(da, dd):
		return da, dd, dr
	case !fa && da:
		return da, dd, dr
	}
	return fa, fd, fr
}

// notNamed reports whether err says that the name authorized is not the
// canonical path of the object the path reaches (a /proc magic link, an
// object with no path from this process's root): an allow of that name
// says nothing about the object, and the operation refuses it.
func notNamed(err error) bool {
	return err == errMagicLink || err == errUnreachable
}

// refuseUnnamed turns an allow of a name that is not the object's (see
// notNamed) into a deny: the operation does not act, and its audit line
// must not say it was allowed. The permits that matched did not decide,
// so they are dropped from dec.
func refuseUnnamed(allow bool, dec *authz.Decision, unnamed bool) bool {
	if allow && unnamed {
		dec.Policies = nil
		return false
	}
	return allow
}
