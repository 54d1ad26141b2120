package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

// The boundary keyhole draws holds only if the principals it serves get no
// shell elsewhere on the host. shellProbe looks for the two common holes:
// OpenSSH's sshd trusting a user CA that keyhole trusts (every certificate
// keyhole accepts for login name X then also opens a shell as local user
// X), and an authorized_keys file of a login user listing a key that
// keyhole's keys_file lists (or, with cert-authority, a CA keyhole trusts).

// shellProbe says where sshd and the login users are.
type shellProbe struct {
	// SSHD is the sshd binary run as "SSHD -T -f SSHDConfig" for its
	// effective settings; "" looks up sshd in PATH, then /usr/sbin/sshd;
	// "none" never runs it and parses SSHDConfig instead.
	SSHD string
	// SSHDConfig is sshd's configuration file.
	SSHDConfig string
	// Passwd lists the users whose authorized_keys files are read: those
	// with a login shell and a home directory.
	Passwd string
}

const (
	defaultSSHDConfig = "/etc/ssh/sshd_config"
	defaultPasswd     = "/etc/passwd"
	// maxProbeFile caps what is read of any one file the probe opens (a
	// user's authorized_keys may be anything, /dev/zero included).
	maxProbeFile = 1 << 20
	// sshdTimeout bounds "sshd -T".
	sshdTimeout = 10 * time.Second
)

// sshdSettings are the sshd settings the probe needs. Each list holds the
// global value first, then any value set inside a Match block (which
// applies to some connections: the probe counts them all).
type sshdSettings struct {
	source              string // how they were found, for messages
	trustedUserCAKeys   []string
	authorizedKeysFile  [][]string
	authorizedKeysFound bool // AuthorizedKeysFile was set anywhere
	// principals is the global AuthorizedPrincipalsFile or
	// AuthorizedPrincipalsCommand other than "none": certificates then log
	// in only as users whose list names one of their principals.
	principals string
}

// findings returns one message per way found into a shell for what keyhole
// accepts: cas are keyhole's trusted user CAs (nil for none), kf its keys
// file (nil for none). Problems reading files are findings too: a layout
// that cannot be checked is not known to be safe.
func (p shellProbe) findings(ctx context.Context, cas *keys.TrustedCAs, kf *keys.KeysFile) []string {
	if p.SSHDConfig == "" {
		p.SSHDConfig = defaultSSHDConfig
	}
	if p.Passwd == "" {
		p.Passwd = defaultPasswd
	}
	var out []string
	st, err := p.sshd(ctx)
	if err != nil {
		out = append(out, err.Error())
	}
	if cas.Len() > 0 && st.principals == "" {
		for _, caFile := range st.trustedUserCAKeys {
			if caFile == "none" {
				continue
			}
			out = append(out, trustedCAFindings(caFile, st.source, cas)...)
		}
	}
	if kf == nil && cas.Len() == 0 {
		return out
	}
	users, err := loginUsers(p.Passwd)
	if err != nil {
		return append(out, err.Error())
	}
	patterns := st.authorizedKeysFile
	if !st.authorizedKeysFound {
		patterns = [][]string{{".ssh/authorized_keys", ".ssh/authorized_keys2"}}
	}
	seen := map[string]bool{}
	for _, u := range users {
		for _, set := range patterns {
			for _, pat := range set {
				if pat == "none" {
					continue
				}
				path := expandSSHDPath(pat, u)
				if seen[path] {
					continue
				}
				seen[path] = true
				out = append(out, authorizedKeysFindings(path, u.name, cas, kf)...)
			}
		}
	}
	return out
}

// sshd returns sshd's settings: from "sshd -T" when sshd runs, else from
// parsing its configuration; values inside Match blocks are always parsed
// from the files, as "sshd -T" without a connection leaves them out. A
// missing configuration file means no sshd settings and no error.
func (p shellProbe) sshd(ctx context.Context) (sshdSettings, error) {
	parsed, perr := parseSSHDConfig(p.SSHDConfig)
	if errors.Is(perr, fs.ErrNotExist) {
		return sshdSettings{source: p.SSHDConfig}, nil
	}
	bin := p.SSHD
	if bin == "" {
		bin = findSSHD()
	}
	if bin != "" && bin != "none" {
		if st, err := runSSHDT(ctx, bin, p.SSHDConfig); err == nil {
			st.trustedUserCAKeys = append(st.trustedUserCAKeys, parsed.match.trustedUserCAKeys...)
			st.authorizedKeysFile = append(st.authorizedKeysFile, parsed.match.authorizedKeysFile...)
			st.authorizedKeysFound = true
			return st, nil
		}
	}
	if perr != nil {
		return sshdSettings{}, fmt.Errorf("cannot check sshd: %w", perr)
	}
	st := parsed.global
	st.source = p.SSHDConfig
	st.trustedUserCAKeys = append(st.trustedUserCAKeys, parsed.match.trustedUserCAKeys...)
	st.authorizedKeysFile = append(st.authorizedKeysFile, parsed.match.authorizedKeysFile...)
	st.authorizedKeysFound = st.authorizedKeysFound || parsed.match.authorizedKeysFound
	if !parsed.global.authorizedKeysFound && parsed.match.authorizedKeysFound {
		// The default still applies outside the Match blocks.
		st.authorizedKeysFile = append(st.authorizedKeysFile, []string{".ssh/authorized_keys", ".ssh/authorized_keys2"})
	}
	return st, nil
}

// findSSHD returns the sshd binary, or "" when there is none.
func findSSHD() string {
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	if fi, err := os.Stat("/usr/sbin/sshd"); err == nil && fi.Mode().IsRegular() {
		return "/usr/sbin/sshd"
	}
	return ""
}

// runSSHDT runs "bin -T -f config" and reads the settings it prints.
func runSSHDT(ctx context.Context, bin, config string) (sshdSettings, error) {
	ctx, cancel := context.WithTimeout(ctx, sshdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-T", "-f", config)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return sshdSettings{}, fmt.Errorf("%s -T -f %s: %w: %s", bin, config, err, bytes.TrimSpace(stderr.Bytes()))
	}
	st := sshdSettings{source: fmt.Sprintf("%s -T -f %s", bin, config)}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "trustedusercakeys":
			st.trustedUserCAKeys = append(st.trustedUserCAKeys, v)
		case "authorizedkeysfile":
			st.authorizedKeysFile = append(st.authorizedKeysFile, strings.Fields(v))
		case "authorizedprincipalsfile", "authorizedprincipalscommand":
			if v != "none" && st.principals == "" {
				st.principals = k + " " + v
			}
		}
	}
	return st, nil
}

// parsedSSHD is sshd's configuration as read from its files: the global
// settings (first value wins, as in sshd) and every value set in a Match
// block.
type parsedSSHD struct {
	global, match sshdSettings
	seenGlobal    map[string]bool // global keywords already set (first wins)
}

// parseSSHDConfig reads sshd's configuration file and its Includes.
func parseSSHDConfig(path string) (parsedSSHD, error) {
	p := parsedSSHD{seenGlobal: map[string]bool{}}
	seen := map[string]bool{}
	err := p.read(path, filepath.Dir(path), false, 0, seen)
	return p, err
}

func (p *parsedSSHD) read(path, base string, inMatch bool, depth int, seen map[string]bool) error {
	if depth > 16 {
		return fmt.Errorf("sshd config %s: includes nested too deeply", path)
	}
	if seen[path] {
		return nil
	}
	seen[path] = true
	data, err := readCapped(path)
	if err != nil {
		return err
	}
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		key, rest := splitSSHDLine(line)
		args := sshdArgs(rest)
		key = strings.ToLower(key)
		if key == "match" {
			inMatch = !(len(args) == 1 && strings.EqualFold(args[0], "all"))
			continue
		}
		if len(args) == 0 {
			continue
		}
		st := &p.global
		if inMatch {
			st = &p.match
		}
		switch key {
		case "include":
			for _, a := range args {
				if !filepath.IsAbs(a) {
					a = filepath.Join(base, a)
				}
				matches, err := filepath.Glob(a)
				if err != nil {
					return fmt.Errorf("sshd config %s:%d: include %q: %w", path, i+1, a, err)
				}
				for _, m := range matches {
					if err := p.read(m, base, inMatch, depth+1, seen); err != nil {
						return err
					}
				}
			}
		case "trustedusercakeys":
			if inMatch || len(st.trustedUserCAKeys) == 0 {
				st.trustedUserCAKeys = append(st.trustedUserCAKeys, args[0])
			}
		case "authorizedkeysfile":
			if inMatch || !st.authorizedKeysFound {
				st.authorizedKeysFile = append(st.authorizedKeysFile, args)
				st.authorizedKeysFound = true
			}
		case "authorizedprincipalsfile", "authorizedprincipalscommand":
			// Only the global setting counts (Match blocks may lift it
			// for some connections: the probe assumes they do).
			if !inMatch && !p.seenGlobal[key] {
				p.seenGlobal[key] = true
				if !strings.EqualFold(args[0], "none") && st.principals == "" {
					st.principals = key + " " + args[0]
				}
			}
		}
	}
	return nil
}

// splitSSHDLine splits "Keyword value", "Keyword=value" or
// "Keyword = value".
func splitSSHDLine(line string) (key, rest string) {
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return line, ""
	}
	key, rest = line[:i], strings.TrimSpace(line[i:])
	rest = strings.TrimSpace(strings.TrimPrefix(rest, "="))
	return key, rest
}

// sshdArgs splits sshd arguments on white space, honouring double quotes.
func sshdArgs(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, have = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// trustedCAFindings compares the CA keys in sshd's TrustedUserCAKeys file
// with keyhole's.
func trustedCAFindings(caFile, source string, cas *keys.TrustedCAs) []string {
	if !filepath.IsAbs(caFile) {
		caFile = filepath.Join("/", caFile)
	}
	data, err := readCapped(caFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // sshd trusts no CA from a missing file
	}
	if err != nil {
		return []string{fmt.Sprintf("sshd (%s) trusts the user CAs in %s, which cannot be read to compare with keyhole's: %v", source, caFile, err)}
	}
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
		if err != nil || !cas.Trusts(key) {
			continue
		}
		out = append(out, fmt.Sprintf("sshd (%s) trusts user CA %s (%s:%d), which keyhole trusts: a certificate keyhole accepts for login name X also opens a shell as local user X",
			source, gossh.FingerprintSHA256(key), caFile, i+1))
	}
	return out
}

// authorizedKeysFindings reads one authorized_keys file of user.
func authorizedKeysFindings(path, user string, cas *keys.TrustedCAs, kf *keys.KeysFile) []string {
	data, err := readCapped(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return []string{fmt.Sprintf("authorized keys of %s cannot be read to compare with keyhole's keys: %v", user, err)}
	}
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, options, _, err := gossh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			continue
		}
		fp := gossh.FingerprintSHA256(key)
		if ls := kf.Lookup(key); len(ls) > 0 {
			out = append(out, fmt.Sprintf("%s:%d lists key %s, which keyhole's keys_file lists (line %d, user %s): it also opens a shell as local user %s",
				path, i+1, fp, ls[0].Line, ls[0].UserID, user))
		}
		if slices.ContainsFunc(options, func(o string) bool { return strings.EqualFold(o, "cert-authority") }) && cas.Trusts(key) {
			out = append(out, fmt.Sprintf("%s:%d trusts user CA %s (cert-authority), which keyhole trusts: its certificates also open a shell as local user %s",
				path, i+1, fp, user))
		}
	}
	return out
}

// loginUser is a passwd entry with a login shell.
type loginUser struct {
	name, uid, home string
}

// loginUsers reads the users of a passwd file that have a login shell
// (an empty shell is /bin/sh to sshd) and a home directory.
func loginUsers(path string) ([]loginUser, error) {
	data, err := readCapped(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the users to check their authorized keys: %w", err)
	}
	var out []loginUser
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) != 7 || f[0] == "" || strings.HasPrefix(f[0], "#") || !filepath.IsAbs(f[5]) {
			continue
		}
		switch filepath.Base(f[6]) {
		case "nologin", "false", "sync", "shutdown", "halt":
			continue
		}
		out = append(out, loginUser{name: f[0], uid: f[2], home: f[5]})
	}
	return out, nil
}

// expandSSHDPath expands the tokens of an AuthorizedKeysFile pattern
// (%% %h %u %U) for u; a relative result is relative to the home.
func expandSSHDPath(pat string, u loginUser) string {
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		if pat[i] != '%' || i+1 == len(pat) {
			b.WriteByte(pat[i])
			continue
		}
		i++
		switch pat[i] {
		case '%':
			b.WriteByte('%')
		case 'h':
			b.WriteString(u.home)
		case 'u':
			b.WriteString(u.name)
		case 'U':
			b.WriteString(u.uid)
		default:
			b.WriteByte('%')
			b.WriteByte(pat[i])
		}
	}
	p := b.String()
	if !filepath.IsAbs(p) {
		p = filepath.Join(u.home, p)
	}
	return p
}

// readCapped reads a regular file, at most maxProbeFile bytes. It opens
// without blocking and refuses anything but a regular file, so a FIFO or a
// device planted as authorized_keys cannot stall or flood the check.
func readCapped(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return io.ReadAll(io.LimitReader(f, maxProbeFile))
}

// probeFlags adds the flags that say where sshd and the users are.
func (p *shellProbe) flags(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&p.SSHD, "sshd", "", "sshd `binary` whose effective settings (sshd -T) are checked; \"none\" parses --sshd-config instead (default: sshd in PATH, else /usr/sbin/sshd)")
	fs.StringVar(&p.SSHDConfig, "sshd-config", defaultSSHDConfig, "sshd's configuration `file`")
	fs.StringVar(&p.Passwd, "passwd", defaultPasswd, "passwd `file` naming the login users whose authorized_keys are checked")
}
