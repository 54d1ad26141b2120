package audit

// Caps on the strings of a line. Most fields come, directly or not, from a
// client (a login name, a path, a request name, an argument vector): the
// writer caps every one of them, so that no caller can forget and one
// client cannot fill the disk with one refused key.

import (
	"strconv"
	"unicode/utf8"
)

// Field caps, in bytes of the field's text before JSON escaping.
const (
	// MaxField caps names and short fields: user, role, request, source, …
	MaxField = 1 << 10
	// MaxPathField caps the fields that hold paths or carry them:
	// resource, argv and reason.
	MaxPathField = 4 << 10
)

// truncate returns s cut to at most max bytes, on a UTF-8 boundary, with a
// visible marker saying how many bytes were dropped.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[truncated " + strconv.Itoa(len(s)-cut) + " bytes]"
}

// capped returns e with every string field cut to its cap.
func capped(e Event) Event {
	for _, f := range []*string{&e.Event, &e.Session, &e.User, &e.Role, &e.Source, &e.Fingerprint,
		&e.Transport, &e.Request, &e.Action, &e.Decision, &e.PolicyVersion, &e.ScriptSHA256} {
		*f = truncate(*f, MaxField)
	}
	for _, f := range []*string{&e.Resource, &e.Argv, &e.Reason} {
		*f = truncate(*f, MaxPathField)
	}
	copied := false
	for i, p := range e.Policies {
		if len(p) > MaxField {
			if !copied {
				e.Policies, copied = append([]string(nil), e.Policies...), true
			}
			e.Policies[i] = truncate(p, MaxField)
		}
	}
	return e
}
