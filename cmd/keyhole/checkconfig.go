package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/keys"
)

// serveChecks are the flags of "keyhole serve" that check a layout: the
// whole check without listening (--check-config FILE, with --strict), and
// where the probe for other ways into a shell looks.
type serveChecks struct {
	checkConfig string
	strict      bool
	probe       shellProbe
}

// addServeChecks registers the flags on fs.
func addServeChecks(fs *flag.FlagSet) *serveChecks {
	sc := &serveChecks{}
	fs.StringVar(&sc.checkConfig, "check-config", "", "check the configuration `file` and everything it names, without listening, and exit")
	fs.BoolVar(&sc.strict, "strict", false, "with --check-config: fail when principals keyhole accepts also get a shell through sshd")
	sc.probe.flags(fs)
	return sc
}

// validate checks how the flags combine with --config (cfgPath).
func (sc *serveChecks) validate(cfgPath string) error {
	if sc.checkConfig != "" && cfgPath != "" {
		return &usageError{"give either --config FILE (serve) or --check-config FILE (check), not both"}
	}
	if sc.strict && sc.checkConfig == "" {
		return &usageError{"--strict needs --check-config FILE"}
	}
	return nil
}

// run is "keyhole serve --check-config FILE [--strict]": every file is
// loaded as serve would load it, nothing is created, nothing listens. The
// summary goes to stdout; findings of the shell probe are warnings (errors
// with --strict).
func (sc *serveChecks) run(ctx context.Context, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(sc.checkConfig)
	if err != nil {
		return err
	}
	l, err := checkLayout(cfg)
	if err != nil {
		return err
	}
	found := sc.probe.findings(ctx, l.cas, l.keysFile)
	if len(found) > 0 {
		for _, f := range found {
			if sc.strict {
				fmt.Fprintf(stderr, "keyhole: error: %s\n", f)
			} else {
				fmt.Fprintf(stderr, "keyhole: warning: %s\n", f)
			}
		}
		fmt.Fprintf(stderr, "keyhole: hint: %s\n", shellHint)
		if sc.strict {
			return exitStatus(1)
		}
	}
	fmt.Fprintf(stdout, "%s: OK: %s\n", sc.checkConfig, l.summary())
	return nil
}

// shellHint is the advice that follows every finding of the shell probe.
const shellHint = "keyhole's policy holds only if the same principals get no shell elsewhere: give sshd and keyhole different user CAs, or give sshd an AuthorizedPrincipalsFile without agent principals (docs/deploy.md)"

// warnShell is serve's start-up check: each finding of the shell probe is
// printed as a warning; nothing stops the server.
func (sc *serveChecks) warnShell(ctx context.Context, cfg *config, stderr io.Writer) {
	var cas *keys.TrustedCAs
	var kf *keys.KeysFile
	if cfg.TrustedUserCAKeys != "" {
		cas, _ = keys.LoadTrustedCAs(cfg.TrustedUserCAKeys)
	}
	if cfg.KeysFile != "" {
		kf, _ = keys.LoadKeysFile(cfg.KeysFile)
	}
	found := sc.probe.findings(ctx, cas, kf)
	for _, f := range found {
		fmt.Fprintf(stderr, "keyhole: warning: %s\n", f)
	}
	if len(found) > 0 {
		fmt.Fprintf(stderr, "keyhole: hint: %s\n", shellHint)
	}
}

// layout is what a checked config names, loaded.
type layout struct {
	cfg      *config
	cas      *keys.TrustedCAs
	keysFile *keys.KeysFile
	policies *authz.PolicySet
	hostKey  gossh.PublicKey // nil: not there yet, serve creates it
}

// checkLayout loads every file cfg names the way serve does, and creates
// nothing. The first problem is returned, naming the file (and the line,
// where the format has lines).
func checkLayout(cfg *config) (*layout, error) {
	l := &layout{cfg: cfg}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("config: listen %q: %w", cfg.Listen, err)
	}
	if cfg.TrustedUserCAKeys != "" {
		cas, err := keys.LoadTrustedCAs(cfg.TrustedUserCAKeys)
		if err != nil {
			return nil, err
		}
		l.cas = cas
	}
	if cfg.KeysFile != "" {
		kf, err := keys.LoadKeysFile(cfg.KeysFile)
		if err != nil {
			return nil, err
		}
		l.keysFile = kf
	}
	// The keys file and KRL together, with serve's hints.
	if _, err := loadAuthenticator(cfg, io.Discard); err != nil {
		return nil, err
	}
	ps, err := authz.Load(cfg.PolicyDir)
	if err != nil {
		return nil, &hinted{err, "fix the policy files named above"}
	}
	l.policies = ps
	if err := l.checkHostKey(); err != nil {
		return nil, err
	}
	if err := checkAuditLog(cfg.AuditLog); err != nil {
		return nil, err
	}
	return l, nil
}

// checkHostKey loads the host key (and certificate) when it exists; when
// it does not, serve will create it, so its directory must be usable.
func (l *layout) checkHostKey() error {
	cfg := l.cfg
	s, err := keys.LoadSigner(cfg.HostKey)
	if errors.Is(err, fs.ErrNotExist) {
		if cfg.HostCertificate != "" {
			return fmt.Errorf("config: host_certificate %s names a certificate for host_key %s, which does not exist", cfg.HostCertificate, cfg.HostKey)
		}
		return checkCreatable(cfg.HostKey, "host_key")
	}
	if err != nil {
		return err
	}
	if _, err := hostSigners(cfg, s); err != nil {
		return err
	}
	l.hostKey = s.PublicKey()
	return nil
}

// checkCreatable checks that the file at path can be created: its nearest
// existing ancestor is a writable directory.
func checkCreatable(path, key string) error {
	dir := filepath.Dir(path)
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("config: %s %s: %s is not a directory", key, path, dir)
			}
			if err := unix.Access(dir, unix.W_OK); err != nil {
				return fmt.Errorf("config: %s %s: directory %s is not writable: %w", key, path, dir, err)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) || dir == filepath.Dir(dir) {
			return fmt.Errorf("config: %s %s: %w", key, path, err)
		}
		dir = filepath.Dir(dir)
	}
}

// checkAuditLog checks that serve can open the audit log for appending:
// an existing regular file that is writable, or a writable directory to
// create it in (serve does not create the directory).
func checkAuditLog(path string) error {
	if path == "-" {
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("config: audit_log %s is not a regular file", path)
		}
		if err := unix.Access(path, unix.W_OK); err != nil {
			return fmt.Errorf("config: audit_log %s is not writable: %w", path, err)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("config: audit_log %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("config: audit_log %s: directory %s: %w", path, dir, err)
	}
	if !di.IsDir() {
		return fmt.Errorf("config: audit_log %s: %s is not a directory", path, dir)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("config: audit_log %s: directory %s is not writable: %w", path, dir, err)
	}
	return nil
}

// summary is the one-line description of a good layout.
func (l *layout) summary() string {
	parts := []string{"listen " + l.cfg.Listen}
	if l.cas != nil {
		parts = append(parts, plural(l.cas.Len(), "trusted user CA key"))
	}
	if l.keysFile != nil {
		parts = append(parts, plural(l.keysFile.Len(), "plain key"))
	}
	if l.cfg.RevokedKeys != "" {
		parts = append(parts, "KRL "+l.cfg.RevokedKeys)
	}
	parts = append(parts, fmt.Sprintf("%s (%s)", plural(l.policies.Len(), "policy"), l.policies.Version()))
	if l.hostKey != nil {
		parts = append(parts, fmt.Sprintf("host key %s (%s)", gossh.FingerprintSHA256(l.hostKey), l.hostKey.Type()))
	} else {
		parts = append(parts, "host key "+l.cfg.HostKey+" created at first start")
	}
	parts = append(parts, "audit log "+l.cfg.AuditLog)
	return strings.Join(parts, ", ")
}

// plural says "1 policy", "2 policies", "3 plain keys".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
