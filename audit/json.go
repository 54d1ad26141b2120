package audit

// A hand-written JSON encoder for Event, for the worker, which sends one
// event per host operation: encoding/json's reflection costs more than the
// operation's policy decision.

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends e encoded as JSON to b: the same bytes json.Marshal
// returns for e (same field order, omissions and escaping, including
// HTML-safe escapes and U+FFFD for invalid UTF-8), without reflection. A
// Time json.Marshal cannot encode gives json.Marshal's error.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	return e.appendJSON(b, false)
}

// appendJSON is AppendJSON; with decisionPolicies, a decision line always
// has its policies field, an empty list when no policy matched (the audit
// log's format: a reader need not tell "none" from "left out").
func (e *Event) appendJSON(b []byte, decisionPolicies bool) ([]byte, error) {
	b = append(b, `{"time":"`...)
	b, err := e.Time.AppendText(b)
	if err != nil {
		_, err := json.Marshal(e)
		return nil, err
	}
	b = append(b, `","event":`...)
	b = appendString(b, e.Event)
	b = appendField(b, `,"session":`, e.Session)
	b = appendField(b, `,"user":`, e.User)
	b = appendField(b, `,"role":`, e.Role)
	b = appendField(b, `,"source":`, e.Source)
	b = appendField(b, `,"fingerprint":`, e.Fingerprint)
	b = appendField(b, `,"transport":`, e.Transport)
	b = appendField(b, `,"request":`, e.Request)
	b = appendField(b, `,"action":`, e.Action)
	b = appendField(b, `,"resource":`, e.Resource)
	b = appendField(b, `,"argv":`, e.Argv)
	b = appendField(b, `,"decision":`, e.Decision)
	if len(e.Policies) > 0 || (decisionPolicies && e.Decision != "") {
		b = append(b, `,"policies":[`...)
		for i, p := range e.Policies {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p)
		}
		b = append(b, ']')
	}
	b = appendField(b, `,"policy_version":`, e.PolicyVersion)
	b = appendField(b, `,"script_sha256":`, e.ScriptSHA256)
	b = appendField(b, `,"reason":`, e.Reason)
	if e.Exit != nil {
		b = append(b, `,"exit":`...)
		b = strconv.AppendInt(b, int64(*e.Exit), 10)
	}
	if e.DryRun {
		b = append(b, `,"dry_run":true`...)
	}
	return append(b, '}'), nil
}

// appendField appends `key"value"` unless value is empty (omitempty).
func appendField(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	return appendString(append(b, key...), value)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it by default.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
