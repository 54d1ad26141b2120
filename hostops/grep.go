//go:build linux

package hostops

import "regexp"

// DefaultMaxMatches is the most matches Grep returns when its caller sets
// no cap.
const DefaultMaxMatches = 1000

// Match is one line Grep found.
type Match struct {
	Line int64  // line number, from 1
	Text string // the line, without its "\n"
}

// Grep returns the lines of the regular file at path (action "read") that
// re matches, in order, at most maxMatches of them (≤ 0 means
// DefaultMaxMatches): past the cap it stops reading, silently, so ask for
// one more to learn whether there were more. re is RE2 (Go's regexp): its
// cost is linear in the input. Lines are split as Lines splits them; the
// file is read as Lines reads it, so a file larger than the host's read cap
// is LIMIT_EXCEEDED unless the cap of matches is reached first.
func (h *Host) Grep(path string, re *regexp.Regexp, maxMatches int) ([]Match, error) {
	if maxMatches <= 0 {
		maxMatches = DefaultMaxMatches
	}
	out := []Match{}
	err := h.scanLines(path, func(n int64, line []byte) bool {
		if re.Match(line) {
			out = append(out, Match{Line: n, Text: string(line)})
		}
		return len(out) < maxMatches
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
