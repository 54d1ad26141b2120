package sshserver

// Dry runs (DESIGN.md, "Wire protocols"): a structured request with
// "dry_run": true runs its script on a host that decides and audits every
// operation as a real run does, reads, and does not act on anything it
// would change (hostops.Host.DryRun). Only the structured request can ask
// for one: an exec command or a starlark subsystem script always runs for
// real, since its one input is the script itself.
//
// The server marks the session's audit lines from the request on (every
// decision line, written from the server's own template, and the
// session.end line) with "dry_run": true, and the end line's stats say
// so. The session.start line is written before the request is read, so it
// cannot.

import (
	"bytes"
	"errors"
)

// dryRunOf is what a request's raw "dry_run" value asks: absent or false
// is a real run, true a dry run; anything else (a string, a number, null)
// is refused, so that no reading of the line can take a dry run for a
// real one.
func dryRunOf(raw []byte) (bool, error) {
	switch v := bytes.TrimSpace(raw); {
	case len(v) == 0 || bytes.Equal(v, []byte("false")):
		return false, nil
	case bytes.Equal(v, []byte("true")):
		return true, nil
	default:
		if len(v) > 32 {
			v = append(v[:32:32], "..."...)
		}
		return false, errors.New("request: \"dry_run\" must be true or false, got " + string(v))
	}
}

// beginDryRun marks the session as a dry run: every audit line written
// from now on says so, and so does the script's host (startMessage's
// caller copies it from the template beginScript returns).
func (ss *session) beginDryRun() {
	ss.mu.Lock()
	ss.base.DryRun = true
	ss.mu.Unlock()
}

// isDryRun reports whether the session's script runs as a dry run.
func (ss *session) isDryRun() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.base.DryRun
}
