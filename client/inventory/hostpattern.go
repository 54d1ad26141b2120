package inventory

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
)

// letters is the order of alphabetic ranges, as Ansible's: a..z then A..Z.
const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// hostToken is a host as written on a line: [user@]pattern[:port].
type hostToken struct {
	user    string
	pattern string // may hold ranges
	port    int
	portStr string // the port as written, for a plain list's names
}

// parseHostToken splits [user@]host[:port], where host may hold ranges
// (web[01:10]) and may be an IPv6 address, bare (::1, no port) or in
// brackets ([::1]:2222).
func parseHostToken(tok string, allowUser bool) (hostToken, error) {
	var t hostToken
	if u, rest, ok := strings.Cut(tok, "@"); ok {
		if !allowUser {
			return t, fmt.Errorf("host %q has a user; set ansible_user=%s instead", tok, u)
		}
		if u == "" || strings.ContainsAny(rest, "@") {
			return t, fmt.Errorf("host %q: want user@host", tok)
		}
		t.user, tok = u, rest
	}
	if tok == "" {
		return t, fmt.Errorf("empty host name")
	}
	// [ipv6] or [ipv6]:port
	if tok[0] == '[' {
		if i := strings.IndexByte(tok, ']'); i > 0 && isIPv6(tok[1:i]) {
			rest := tok[i+1:]
			t.pattern = tok[1:i]
			if rest == "" {
				return t, nil
			}
			if rest[0] != ':' {
				return t, fmt.Errorf("host %q: want [address]:port", tok)
			}
			return t, t.setPort(tok, rest[1:])
		}
	}
	if isIPv6(tok) {
		t.pattern = tok
		return t, nil
	}
	// The last colon outside brackets starts the port.
	depth, colon := 0, -1
	for i := 0; i < len(tok); i++ {
		switch tok[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				if colon >= 0 {
					return t, fmt.Errorf("host %q has more than one port separator; an IPv6 address with a port is written [address]:port", tok)
				}
				colon = i
			}
		}
	}
	if colon < 0 {
		t.pattern = tok
		return t, nil
	}
	t.pattern = tok[:colon]
	if colon == len(tok)-1 {
		return t, fmt.Errorf("host %q ends in ':'; a port follows the colon (web1:2222)", tok)
	}
	if t.pattern == "" {
		return t, fmt.Errorf("host %q has a port but no name", tok)
	}
	return t, t.setPort(tok, tok[colon+1:])
}

func (t *hostToken) setPort(tok, s string) error {
	p, err := parsePort(s)
	if err != nil {
		return fmt.Errorf("host %q: %v", tok, err)
	}
	t.port, t.portStr = p, s
	return nil
}

func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	p, _ := strconv.Atoi(s)
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d is out of range (1-65535)", p)
	}
	return p, nil
}

func isIPv6(s string) bool {
	if !strings.Contains(s, ":") {
		return false
	}
	if i := strings.IndexByte(s, '%'); i > 0 { // zone: fe80::1%eth0
		s = s[:i]
	}
	return net.ParseIP(s) != nil
}

// splitAddr splits an address as a plain list names a host: host,
// host:port, ::1 or [::1]:port. No ranges, no user.
func splitAddr(s string) (addr string, port int, err error) {
	if strings.ContainsAny(s, "@") {
		return "", 0, fmt.Errorf("%q holds a user", s)
	}
	t, err := parseHostToken(s, false)
	if err != nil {
		return "", 0, err
	}
	if strings.ContainsAny(t.pattern, "[]") {
		return "", 0, fmt.Errorf("%q is not an address", s)
	}
	if err := checkName(t.pattern); err != nil {
		return "", 0, err
	}
	return t.pattern, t.port, nil
}

// checkName refuses names that could not be written on a line or
// selected by a pattern: empty, with spaces or control characters or a
// comma, or starting with a pattern operator.
func checkName(s string) error {
	if s == "" {
		return fmt.Errorf("empty name")
	}
	if strings.ContainsAny(s[:1], "!&@~") {
		return fmt.Errorf("name %q starts with %q, which patterns read as an operator", s, s[:1])
	}
	if strings.Contains(s, ",") {
		return fmt.Errorf("name %q holds a comma, which patterns read as a separator", s)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("name %q holds a space or control character", s)
		}
	}
	return nil
}

// rangeSeg is one [begin:end] or [begin:end:step] of a host pattern.
type rangeSeg struct {
	alpha      bool
	beg, n     int // first value (index into letters when alpha) and count
	step       int
	width      int // zero-padded width, 0 for none
	lit        string
	isRangeSeg bool
}

// expandRanges expands the ranges of a host pattern, as Ansible does:
// web[01:03] → web01 web02 web03, db-[a:c] → db-a db-b db-c,
// app[1:9:4] → app1 app5 app9; several ranges multiply, leftmost slowest.
// It fails rather than produce more than limit names.
func expandRanges(pattern string, limit int) ([]string, error) {
	if !strings.ContainsAny(pattern, "[]") {
		return []string{pattern}, nil
	}
	var segs []rangeSeg
	total := 1
	rest := pattern
	for rest != "" {
		i := strings.IndexAny(rest, "[]")
		if i < 0 {
			segs = append(segs, rangeSeg{lit: rest})
			break
		}
		if rest[i] == ']' {
			return nil, fmt.Errorf("bad range in %q: ']' without '['", pattern)
		}
		j := strings.IndexAny(rest[i+1:], "[]")
		if j < 0 || rest[i+1+j] == '[' {
			return nil, fmt.Errorf("bad range in %q: '[' without ']'", pattern)
		}
		j += i + 1
		if i > 0 {
			segs = append(segs, rangeSeg{lit: rest[:i]})
		}
		r, err := parseRange(rest[i+1 : j])
		if err != nil {
			return nil, fmt.Errorf("bad range [%s] in %q: %v", rest[i+1:j], pattern, err)
		}
		if r.n > limit/total {
			return nil, fmt.Errorf("range %q makes more than %d hosts", pattern, limit)
		}
		total *= r.n
		segs = append(segs, r)
		rest = rest[j+1:]
	}
	out := make([]string, 0, total)
	var b strings.Builder
	var gen func(k int)
	gen = func(k int) {
		if k == len(segs) {
			out = append(out, b.String())
			return
		}
		s := segs[k]
		mark := b.Len()
		if !s.isRangeSeg {
			b.WriteString(s.lit)
			gen(k + 1)
			trim(&b, mark)
			return
		}
		for i := 0; i < s.n; i++ {
			v := s.beg + i*s.step
			if s.alpha {
				b.WriteByte(letters[v])
			} else {
				d := strconv.Itoa(v)
				for w := len(d); w < s.width; w++ {
					b.WriteByte('0')
				}
				b.WriteString(d)
			}
			gen(k + 1)
			trim(&b, mark)
		}
	}
	gen(0)
	return out, nil
}

func trim(b *strings.Builder, n int) {
	s := b.String()[:n]
	b.Reset()
	b.WriteString(s)
}

func parseRange(s string) (rangeSeg, error) {
	r := rangeSeg{isRangeSeg: true, step: 1}
	bounds := strings.Split(s, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return r, fmt.Errorf("want [begin:end] or [begin:end:step]")
	}
	beg, end := bounds[0], bounds[1]
	if len(bounds) == 3 {
		st, err := smallInt(bounds[2])
		if err != nil || st < 1 {
			return r, fmt.Errorf("step %q is not a positive number", bounds[2])
		}
		r.step = st
	}
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return r, fmt.Errorf("no end")
	}
	bi, be := strings.IndexByte(letters, beg[0]), strings.IndexByte(letters, end[0])
	if len(beg) == 1 && len(end) == 1 && bi >= 0 && be >= 0 {
		if bi > be {
			return r, fmt.Errorf("begin %q comes after end %q", beg, end)
		}
		r.alpha, r.beg, r.n = true, bi, (be-bi)/r.step+1
		return r, nil
	}
	b, err1 := smallInt(beg)
	e, err2 := smallInt(end)
	if err1 != nil || err2 != nil {
		return r, fmt.Errorf("begin and end must both be numbers or both single letters")
	}
	if beg[0] == '0' && len(beg) > 1 {
		if len(beg) != len(end) {
			return r, fmt.Errorf("zero-padded begin %q and end %q must have the same width", beg, end)
		}
		r.width = len(beg)
	}
	if b > e {
		return r, fmt.Errorf("begin %s is greater than end %s", beg, end)
	}
	r.beg, r.n = b, (e-b)/r.step+1
	return r, nil
}

// smallInt parses a decimal of at most 9 digits.
func smallInt(s string) (int, error) {
	if s == "" || len(s) > 9 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a number")
	}
	return strconv.Atoi(s)
}
