//go:build linux

package hostops

import (
	"strings"

	"github.com/keyhole-dev/keyhole/audit"
)

// Acts reports whether the decision event e is followed by an effect on
// the host once it is written: an allowed write, create, delete, mkdir,
// rename, chmod or exec, or service start, stop, restart or reload, not
// asked by Allowed. A sink that writes lines elsewhere (the worker's pipe
// to the server) must know such a line is written before Log returns;
// reads, stats, lists and denials change nothing on the host.
func Acts(e audit.Event) bool {
	if e.Event != audit.Decision || e.Decision != allowed || strings.HasPrefix(e.Reason, ReasonQuery) {
		return false
	}
	switch e.Action {
	case "write", "create", "delete", "mkdir", "rename", "chmod", "exec",
		ServiceStart, ServiceStop, ServiceRestart, ServiceReload:
		return true
	}
	return false
}
