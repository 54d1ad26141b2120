package hostops

import (
	"io/fs"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/outcome"
)

// Error kinds, as scripts and clients see them (package outcome).
const (
	KindAccessDenied    = outcome.KindAccessDenied
	KindNotFound        = outcome.KindNotFound
	KindInvalidArgument = outcome.KindInvalidArgument
	KindIOError         = outcome.KindIOError
	KindLimitExceeded   = outcome.KindLimitExceeded
	// KindInternal is the error of an operation whose audit line could not
	// be written: it did not happen, and the script ends (exit 125).
	KindInternal = outcome.KindInternal
)

// Error is the error every Host operation returns: outcome's, so it
// reaches the script and the client unchanged. Message is written for the
// script's author and never holds file contents.
type Error = outcome.Error

// Decider answers authorization requests; *authz.PolicySet is one.
type Decider interface {
	Decide(authz.Request) authz.Decision
}

// Host performs host operations for one session. Every operation pins the
// object, authorizes the pinned object's real path with Policy, writes one
// decision event to Audit, and only then acts through the pinned descriptor.
// A Host is safe for concurrent use once built; its fields must not change.
type Host struct {
	Policy    Decider
	Principal authz.Principal
	// Context holds the session's request context; Now is set per
	// operation from Clock.
	Context authz.Context
	Audit   audit.Sink
	// Event is the template of each decision event: session, user, role,
	// source, fingerprint, transport and script hash are copied from it.
	Event audit.Event
	// Clock returns the time for context.now and audit lines; nil means
	// time.Now.
	Clock func() time.Time
	// MaxReadBytes is the most Read returns when its caller sets no smaller
	// cap; a larger file is LIMIT_EXCEEDED. Zero means DefaultMaxReadBytes.
	MaxReadBytes int64
	// MaxListEntries is the most entries List returns; a larger directory
	// is LIMIT_EXCEEDED. Zero means DefaultMaxListEntries.
	MaxListEntries int
	// MaxWriteBytes is the most one Write, Append or Copy writes; more is
	// LIMIT_EXCEEDED and nothing is written. Zero means
	// DefaultMaxWriteBytes.
	MaxWriteBytes int64
	// DryRun makes every operation that would change the host (writes,
	// commands, service actions) pin, authorize and audit as usual but not
	// act: an allowed one reports success without doing anything. Reads
	// still read, and so does a service's status. Every decision event
	// says DryRun. Used by a structured request's "dry_run" and by
	// "keyhole policy explain".
	DryRun bool
	// ServiceManager is the command that Service runs, as
	// `<ServiceManager...> <action> -- <name>`; its first element is an
	// absolute path or a name looked up in ExecSearchPath. Empty means
	// DefaultServiceManager.
	ServiceManager []string
	// MaxExecOutput is the most bytes of stdout and of stderr each that
	// Exec and Service keep; the rest is read and dropped, and the result
	// says it was truncated. Zero means DefaultMaxExecOutput.
	MaxExecOutput int64
	// Counters, when set, counts the bytes every operation reads and
	// writes and caps the script's totals (see Counters). Nil counts
	// nothing.
	Counters *Counters
}

// Entry is one directory entry returned by List.
type Entry struct {
	Name string
	Type string // "file", "dir", "symlink", "other"
	Size int64
}

// Info describes a file, as returned by Stat.
type Info struct {
	Path    string // canonical path of the pinned object
	Type    string // "file", "dir", "symlink", "fifo", "socket", "device", "other"
	Size    int64
	Mode    fs.FileMode // permission bits only
	UID     int64
	GID     int64
	Nlink   int64
	ModTime time.Time
}
