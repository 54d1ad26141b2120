package client

// Host keys, checked against known_hosts files as OpenSSH does with
// StrictHostKeyChecking=yes: a key that does not match a known one is
// refused with its fingerprint, a host with no known key is refused (no
// trust on first use), and a host certificate signed by a CA of an
// @cert-authority line is accepted for the hosts that line names.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is a host key refused: Known is empty when the host has no
// known key (unknown host) and lists the known keys when the presented
// one is not among them (mismatch).
type HostKeyError struct {
	Host        string   // the address checked, as known_hosts names it ("[h]:p" or "h")
	Fingerprint string   // SHA256 fingerprint of the key the server presented
	KeyType     string   // its type
	Known       []string // "file:line" of each known key for the host
	Revoked     bool     // the key is marked @revoked
	// Reason is set when a host certificate was refused (no CA of an
	// @cert-authority line signed it for this host, or it is not valid).
	Reason string
	err    error
}

func (e *HostKeyError) Error() string {
	switch {
	case e.Reason != "":
		return fmt.Sprintf("host certificate for %s refused (%s %s): %s", e.Host, e.KeyType, e.Fingerprint, e.Reason)
	case e.Revoked:
		return fmt.Sprintf("host key for %s is revoked (%s %s)", e.Host, e.KeyType, e.Fingerprint)
	case len(e.Known) == 0:
		return fmt.Sprintf("host %s is not known: its %s key is %s; add it to known_hosts (ssh-keyscan) or trust its host CA with @cert-authority",
			e.Host, e.KeyType, e.Fingerprint)
	default:
		return fmt.Sprintf("host key mismatch for %s: the server presented %s %s, known_hosts has another key (%s)",
			e.Host, e.KeyType, e.Fingerprint, strings.Join(e.Known, ", "))
	}
}

func (e *HostKeyError) Unwrap() error { return e.err }

// Mismatch reports whether a known key differs from the presented one.
func (e *HostKeyError) Mismatch() bool { return len(e.Known) > 0 || e.Revoked }

// DefaultKnownHosts returns the known_hosts files OpenSSH reads by
// default that exist: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts.
func DefaultKnownHosts() []string {
	var out []string
	if home, err := os.UserHomeDir(); err == nil {
		out = append(out, filepath.Join(home, ".ssh", "known_hosts"))
	}
	out = append(out, "/etc/ssh/ssh_known_hosts")
	var exist []string
	for _, p := range out {
		if _, err := os.Stat(p); err == nil {
			exist = append(exist, p)
		}
	}
	return exist
}

// hostKeys checks host keys against known_hosts files. Plain keys are
// checked by x/crypto's knownhosts; @cert-authority and @revoked lines are
// read here too, since knownhosts matches a pattern such as "*" against
// port 22 only, where OpenSSH matches it against "[host]:port" as well.
type hostKeys struct {
	cb          ssh.HostKeyCallback
	authorities []caLine
	revoked     map[string]bool // plain key blobs
	caAt        map[string]bool // "file:line" of @cert-authority lines
}

// caLine is one @cert-authority line.
type caLine struct {
	patterns []string
	key      ssh.PublicKey
}

// probeKey is a key no host has: checking it lists the known keys of a
// host, which picks the host key algorithms to ask for.
var probeKey = func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
}()

// loadHostKeys reads files; none at all is an error, since every host
// would then be refused.
func loadHostKeys(files []string) (*hostKeys, error) {
	if len(files) == 0 {
		return nil, errors.New("client: no known_hosts file (~/.ssh/known_hosts does not exist): every host would be refused")
	}
	for _, fn := range files {
		if _, err := os.Stat(fn); err != nil {
			return nil, fmt.Errorf("client: known hosts: %w", err)
		}
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("client: known hosts: %w", err)
	}
	h := &hostKeys{cb: cb, revoked: map[string]bool{}, caAt: map[string]bool{}}
	for _, fn := range files {
		if err := h.readMarkers(fn); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// readMarkers records the @cert-authority and @revoked lines of fn.
func (h *hostKeys) readMarkers(fn string) error {
	data, err := os.ReadFile(fn)
	if err != nil {
		return fmt.Errorf("client: known hosts: %w", err)
	}
	for i, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || (fields[0] != "@cert-authority" && fields[0] != "@revoked") {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(fields[2:], " ")))
		if err != nil {
			continue // knownhosts.New already refused a file of bad lines only
		}
		if fields[0] == "@revoked" {
			if c, ok := key.(*ssh.Certificate); ok {
				key = c.Key
			}
			h.revoked[string(key.Marshal())] = true
			continue
		}
		h.caAt[fmt.Sprintf("%s:%d", fn, i+1)] = true
		h.authorities = append(h.authorities, caLine{patterns: strings.Split(fields[1], ","), key: key})
	}
	return nil
}

// hostString is how OpenSSH names address in known_hosts: "host" on
// port 22, "[host]:port" on any other.
func hostString(address string) string {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return address
	}
	if port == "22" {
		return host
	}
	return "[" + host + "]:" + port
}

// isAuthority reports whether ca is the key of an @cert-authority line
// whose patterns match address, as OpenSSH matches them: a
// comma-separated list of globs (* and ?) and hashed names, a negated
// match (!pattern) excluding the host.
func (h *hostKeys) isAuthority(ca ssh.PublicKey, address string) bool {
	name := hostString(address)
	for _, l := range h.authorities {
		if !bytes.Equal(l.key.Marshal(), ca.Marshal()) {
			continue
		}
		matched := false
		for _, p := range l.patterns {
			neg := strings.HasPrefix(p, "!")
			p = strings.TrimPrefix(p, "!")
			var ok bool
			if strings.HasPrefix(p, "|1|") {
				ok = hashedMatch(p, name)
			} else {
				ok = globMatch(p, name)
			}
			if ok && neg {
				matched = false
				break
			}
			matched = matched || ok
		}
		if matched {
			return true
		}
	}
	return false
}

// globMatch matches s against p, where * is any sequence and ? any one
// character.
func globMatch(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if globMatch(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || p[0] != s[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return s == ""
}

// hashedMatch matches a hashed known_hosts name (|1|salt|hash, base64,
// HMAC-SHA1 of the name keyed by the salt) against name.
func hashedMatch(p, name string) bool {
	parts := strings.Split(p, "|")
	if len(parts) != 4 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	want, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	m := hmac.New(sha1.New, salt)
	m.Write([]byte(name))
	return hmac.Equal(m.Sum(nil), want)
}

// callback returns the check for a connection to address (host:port).
func (h *hostKeys) callback(address string) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		var err error
		if _, isCert := key.(*ssh.Certificate); isCert {
			checker := ssh.CertChecker{
				IsHostAuthority: h.isAuthority,
				IsRevoked: func(c *ssh.Certificate) bool {
					return h.revoked[string(c.Key.Marshal())] || h.revoked[string(c.SignatureKey.Marshal())]
				},
			}
			err = checker.CheckHostKey(address, remote, key)
		} else {
			err = h.cb(address, remote, key)
		}
		if err == nil {
			return nil
		}
		shown := key
		if c, ok := key.(*ssh.Certificate); ok {
			shown = c.Key
		}
		he := &HostKeyError{Host: knownhosts.Normalize(address), Fingerprint: ssh.FingerprintSHA256(shown),
			KeyType: key.Type(), err: err}
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &ke):
			for _, w := range ke.Want {
				if at := fmt.Sprintf("%s:%d", w.Filename, w.Line); !h.caAt[at] {
					he.Known = append(he.Known, at)
				}
			}
		case errors.As(err, &re):
			he.Revoked = true
		default:
			// A certificate no known CA signed for this host, or a bad one:
			// refused like an unknown key, with the reason kept.
			he.Reason = strings.TrimPrefix(err.Error(), "ssh: ")
		}
		return he
	}
}

// algorithms returns the host key algorithms to ask address for: those
// of its known plain keys, so a server with several host keys presents
// the one known_hosts holds (as OpenSSH orders them). Nil, the library's
// default, when no plain key is known (a host CA may still vouch).
func (h *hostKeys) algorithms(address string) []string {
	err := h.cb(address, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}, probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(algs ...string) {
		for _, a := range algs {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	for _, w := range ke.Want {
		if h.caAt[fmt.Sprintf("%s:%d", w.Filename, w.Line)] {
			continue
		}
		switch t := w.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
