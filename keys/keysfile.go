package keys

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/ssh"
)

// Refusals of plain keys.
var (
	ErrKeyNotListed  = &RefusedError{Reason: "key not listed"}
	ErrKeyExpired    = &RefusedError{Reason: "key expired"}
	ErrKeysFileStale = &RefusedError{Reason: "keys file unusable"}
)

// KeysFile is a parsed keys_file: authorized_keys lines whose comment is
// the user id and whose principals="a,b" option lists the roles. It is
// read-only after parsing and safe for concurrent use.
type KeysFile struct {
	entries map[string][]*keyEntry // by key wire encoding, in file order
}

// keyEntry is one line of a keys file.
type keyEntry struct {
	line       int
	userID     string
	principals []string
	from       []fromPattern // from= patterns; nil means any source
	expiry     *time.Time    // expiry-time=; nil means none
}

// noopOptions restrict things keyhole never grants (a shell, a terminal,
// forwarding), so they are accepted and change nothing.
var noopOptions = []string{
	"restrict", "no-pty", "no-port-forwarding", "no-agent-forwarding",
	"no-x11-forwarding", "no-user-rc",
}

// LoadKeysFile reads the keys file at path. Errors name path:line.
func LoadKeysFile(path string) (*KeysFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: read keys file: %w", err)
	}
	kf, err := ParseKeysFile(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s:%w", path, err)
	}
	return kf, nil
}

// ParseKeysFile parses keys file contents. Every option but principals,
// from, expiry-time and the restrictions keyhole always applies (restrict,
// no-pty, no-*-forwarding, no-user-rc) is refused, as are certificates,
// lines without a comment and lines without principals. Errors start with
// the line number ("3: …").
func ParseKeysFile(data []byte) (*KeysFile, error) {
	kf := &KeysFile{entries: map[string][]*keyEntry{}}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		line := bytes.TrimSpace(raw)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, comment, options, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("%d: %w", n, err)
		}
		if _, ok := key.(*ssh.Certificate); ok {
			return nil, fmt.Errorf("%d: a certificate cannot be listed; trust its CA in trusted_user_ca_keys", n)
		}
		e := &keyEntry{line: n, userID: strings.TrimSpace(comment)}
		if e.userID == "" {
			return nil, fmt.Errorf("%d: missing comment (the user id)", n)
		}
		if strings.ContainsFunc(e.userID, unicode.IsControl) {
			return nil, fmt.Errorf("%d: the comment (user id) holds a control character", n)
		}
		seen := map[string]bool{}
		for _, opt := range options {
			name, val, hasVal := strings.Cut(opt, "=")
			name = strings.ToLower(name)
			if seen[name] {
				return nil, fmt.Errorf("%d: option %s given twice", n, name)
			}
			seen[name] = true
			if slices.Contains(noopOptions, name) {
				if hasVal {
					return nil, fmt.Errorf("%d: option %s takes no value", n, name)
				}
				continue
			}
			if !hasVal {
				return nil, fmt.Errorf("%d: unknown option %q", n, name)
			}
			v, err := unquoteOption(val)
			if err != nil {
				return nil, fmt.Errorf("%d: option %s: %w", n, name, err)
			}
			switch name {
			case "principals":
				for _, p := range strings.Split(v, ",") {
					p = strings.TrimSpace(p)
					if p == "" {
						return nil, fmt.Errorf("%d: empty principal in %q", n, v)
					}
					if strings.ContainsFunc(p, unicode.IsControl) {
						return nil, fmt.Errorf("%d: principal %q holds a control character", n, p)
					}
					e.principals = append(e.principals, p)
				}
			case "from":
				pats, err := parseFrom(v)
				if err != nil {
					return nil, fmt.Errorf("%d: from: %w", n, err)
				}
				e.from = pats
			case "expiry-time":
				t, err := parseExpiry(v)
				if err != nil {
					return nil, fmt.Errorf("%d: expiry-time: %w", n, err)
				}
				e.expiry = &t
			default:
				return nil, fmt.Errorf("%d: unknown option %q", n, name)
			}
		}
		if len(e.principals) == 0 {
			return nil, fmt.Errorf("%d: missing principals=\"role,…\" (the roles the key may log in as)", n)
		}
		k := string(key.Marshal())
		kf.entries[k] = append(kf.entries[k], e)
	}
	return kf, nil
}

// unquoteOption removes the double quotes of an option value, undoing \".
func unquoteOption(v string) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", errors.New("value must be in double quotes")
	}
	return strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`), nil
}

// fromPattern is one parsed pattern of a from= list: an address block or a
// wildcard pattern on the address text, possibly negated. Patterns are
// parsed once, when the keys file is loaded, so matching cannot meet a
// pattern it does not understand.
type fromPattern struct {
	negated bool
	block   netip.Prefix // valid for an address block
	glob    string       // lower-case wildcard pattern otherwise
}

// match reports whether the pattern, ignoring negation, matches ip, whose
// text form is text.
func (p fromPattern) match(ip netip.Addr, text string) bool {
	if p.block.IsValid() {
		return p.block.Contains(ip)
	}
	hit, _ := path.Match(p.glob, text) // checked at load: cannot fail
	return hit
}

// parseFrom parses a from= pattern list: addresses, CIDR blocks, or
// wildcard patterns (* and ?) on the address text, each optionally negated
// with "!". Host names are not resolved (as OpenSSH with UseDNS no), so a
// pattern with letters can only match a literal address text.
func parseFrom(v string) ([]fromPattern, error) {
	var out []fromPattern
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		body := strings.TrimPrefix(p, "!")
		if body == "" {
			return nil, fmt.Errorf("empty pattern in %q", v)
		}
		fp := fromPattern{negated: len(body) < len(p)}
		if strings.Contains(body, "/") {
			pref, err := netip.ParsePrefix(body)
			if err != nil {
				return nil, fmt.Errorf("bad address block %q", body)
			}
			fp.block = pref.Masked()
		} else {
			fp.glob = strings.ToLower(body)
			if _, err := path.Match(fp.glob, ""); err != nil {
				return nil, fmt.Errorf("bad pattern %q", body)
			}
		}
		out = append(out, fp)
	}
	return out, nil
}

// matchFrom reports whether source is allowed by pats: a negated match
// refuses, otherwise any positive match allows (OpenSSH's
// match_host_and_ip on the address).
func matchFrom(pats []fromPattern, source net.Addr) bool {
	var ip netip.Addr
	if tcp, ok := source.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(tcp.IP)
		ip = ip.Unmap()
	}
	if !ip.IsValid() {
		return false
	}
	text := ip.String()
	allowed := false
	for _, p := range pats {
		if !p.match(ip, text) {
			continue
		}
		if p.negated {
			return false
		}
		allowed = true
	}
	return allowed
}

// parseExpiry parses YYYYMMDD[HHMM[SS]], in local time unless it ends in Z,
// as OpenSSH's expiry-time.
func parseExpiry(v string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		loc = time.UTC
		v = v[:len(v)-1]
	}
	var layout string
	switch len(v) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("%q is not YYYYMMDD[HHMM[SS]][Z]", v)
	}
	t, err := time.ParseInLocation(layout, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not YYYYMMDD[HHMM[SS]][Z]", v)
	}
	return t, nil
}

// Len returns the number of listed keys (lines).
func (kf *KeysFile) Len() int {
	n := 0
	for _, es := range kf.entries {
		n += len(es)
	}
	return n
}

// Check decides whether the plain key may log in as login from source at
// now. Lines listing the key are tried in file order; the first that allows
// the login decides, otherwise the first line's refusal is returned.
func (kf *KeysFile) Check(key ssh.PublicKey, login string, source net.Addr, now time.Time) (*Identity, error) {
	if kf == nil {
		return nil, ErrKeyNotListed
	}
	entries := kf.entries[string(key.Marshal())]
	if len(entries) == 0 {
		return nil, refused(ErrKeyNotListed, "%s", ssh.FingerprintSHA256(key))
	}
	var first error
	for _, e := range entries {
		err := e.check(login, source, now)
		if err == nil {
			return &Identity{
				UserID:      e.userID,
				Role:        login,
				Principals:  slices.Clone(e.principals),
				Fingerprint: ssh.FingerprintSHA256(key),
				Auth:        "key",
			}, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

func (e *keyEntry) check(login string, source net.Addr, now time.Time) error {
	if !slices.Contains(e.principals, login) {
		return refused(ErrPrincipalNotAllowed, "%q not in principals of keys file line %d", login, e.line)
	}
	if e.from != nil && !matchFrom(e.from, source) {
		return refused(ErrSourceAddress, "%s not allowed by from= of keys file line %d", hostText(source), e.line)
	}
	if e.expiry != nil && !now.Before(*e.expiry) {
		return refused(ErrKeyExpired, "expiry-time %s of keys file line %d", e.expiry.UTC().Format(time.RFC3339), e.line)
	}
	return nil
}

func hostText(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	if a == nil {
		return "unknown"
	}
	return a.String()
}
