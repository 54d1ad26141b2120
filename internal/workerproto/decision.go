package workerproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Decision is what a worker reports of one host operation's decision: only
// the fields the operation decides. Who, where, when and under which
// policy come from the server's own record of the session.
type Decision struct {
	Action   string
	Resource string
	Allow    bool
	Policies []string
	Reason   string
	Argv     string // exec only: the argument vector decided on
}

// Limits of a decision record, checked on both ends.
const (
	// MaxDecisionPolicies is the most policy ids a record holds.
	MaxDecisionPolicies = 1024
	decisionVersion     = 1
)

// AppendDecision appends d's record to b: a version byte, the allow byte,
// then Action, Resource, Reason, Argv and the policy count and ids, each
// string as a uvarint length and its bytes.
func AppendDecision(b []byte, d *Decision) []byte {
	b = append(b, decisionVersion)
	if d.Allow {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	for _, s := range [...]string{d.Action, d.Resource, d.Reason, d.Argv} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(d.Policies)))
	for _, p := range d.Policies {
		b = appendString(b, p)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errDecisionShort = errors.New("workerproto: decision record cut off")

// ParseDecision decodes a record AppendDecision wrote. It refuses anything
// else: another version, an allow byte other than 0 or 1, lengths past the
// record, a length not in its shortest form, invalid UTF-8, an empty action, more than 1024 policies, or bytes
// after the record.
func ParseDecision(p []byte) (Decision, error) {
	var d Decision
	if len(p) < 2 {
		return d, errDecisionShort
	}
	if p[0] != decisionVersion {
		return d, fmt.Errorf("workerproto: decision record version %d", p[0])
	}
	switch p[1] {
	case 0:
	case 1:
		d.Allow = true
	default:
		return d, fmt.Errorf("workerproto: decision record allow byte %d", p[1])
	}
	p = p[2:]
	var err error
	for _, s := range [...]*string{&d.Action, &d.Resource, &d.Reason, &d.Argv} {
		if *s, p, err = readString(p); err != nil {
			return Decision{}, err
		}
	}
	if d.Action == "" {
		return Decision{}, errors.New("workerproto: decision record without an action")
	}
	n, k := uvarint(p)
	if k <= 0 {
		return Decision{}, errDecisionShort
	}
	p = p[k:]
	if n > MaxDecisionPolicies || n > uint64(len(p)) {
		return Decision{}, fmt.Errorf("workerproto: decision record with %d policies", n)
	}
	if n > 0 {
		d.Policies = make([]string, n)
		for i := range d.Policies {
			if d.Policies[i], p, err = readString(p); err != nil {
				return Decision{}, err
			}
		}
	}
	if len(p) != 0 {
		return Decision{}, fmt.Errorf("workerproto: %d bytes after a decision record", len(p))
	}
	return d, nil
}

func readString(p []byte) (string, []byte, error) {
	n, k := uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return "", nil, errDecisionShort
	}
	s := p[k : k+int(n)]
	if !utf8.Valid(s) {
		return "", nil, errors.New("workerproto: decision record string is not UTF-8")
	}
	return string(s), p[k+int(n):], nil
}

// uvarint is binary.Uvarint that also refuses a number not in its shortest
// form, so that every record has one encoding.
func uvarint(p []byte) (uint64, int) {
	n, k := binary.Uvarint(p)
	if k > 1 && p[k-1] == 0 {
		return 0, 0
	}
	return n, k
}
