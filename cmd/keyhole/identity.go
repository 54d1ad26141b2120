package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

// checkIdentityConfig checks the identity keys of a config (keys_file,
// revoked_keys, host_certificate and the authentication limits) and makes
// their paths absolute, relative to the config file at path.
func checkIdentityConfig(c *config, path string) error {
	for _, l := range []struct {
		name string
		v    int
	}{
		{"max_auth_tries", c.Limits.MaxAuthTries},
		{"max_startups", c.Limits.MaxStartups},
		{"max_startups_per_source", c.Limits.MaxStartupsPerSource},
	} {
		if l.v < 0 {
			return fmt.Errorf("config %s: limits.%s must not be negative", path, l.name)
		}
	}
	if c.Limits.MaxStartups > 0 && c.Limits.MaxStartupsPerSource > c.Limits.MaxStartups {
		return fmt.Errorf("config %s: limits.max_startups_per_source (%d) is larger than limits.max_startups (%d)",
			path, c.Limits.MaxStartupsPerSource, c.Limits.MaxStartups)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.KeysFile, &c.RevokedKeys, &c.HostCertificate} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return nil
}

// loadAuthenticator loads what decides logins: the trusted user CAs, the
// keys file and the KRL. Reload failures later are logged to stderr.
func loadAuthenticator(cfg *config, stderr io.Writer) (*keys.Authenticator, error) {
	var cas *keys.TrustedCAs
	if cfg.TrustedUserCAKeys != "" {
		var err error
		if cas, err = keys.LoadTrustedCAs(cfg.TrustedUserCAKeys); err != nil {
			return nil, err
		}
	}
	log := logrus.New()
	log.SetOutput(stderr)
	auth, err := keys.NewAuthenticator(keys.AuthConfig{
		CAs:         cas,
		KeysFile:    cfg.KeysFile,
		RevokedKeys: cfg.RevokedKeys,
		Log:         log,
	})
	if err != nil {
		if cfg.RevokedKeys != "" && errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(cfg.RevokedKeys); errors.Is(serr, os.ErrNotExist) {
				return nil, &hinted{err, fmt.Sprintf("revoked_keys names no file; create a KRL that revokes nothing yet with \"keyhole ca revoke --krl %s --empty\"", cfg.RevokedKeys)}
			}
		}
		return nil, &hinted{err, "fix or create the file named above (a KRL is made by \"keyhole ca revoke\" or \"ssh-keygen -k\")"}
	}
	return auth, nil
}

// hostSigners returns the host key and, when host_certificate is set, the
// host key with its certificate.
func hostSigners(cfg *config, hostKey gossh.Signer) ([]gossh.Signer, error) {
	signers := []gossh.Signer{hostKey}
	if cfg.HostCertificate == "" {
		return signers, nil
	}
	cs, err := keys.LoadHostCertSigner(cfg.HostCertificate, hostKey, time.Now())
	if err != nil {
		return nil, &hinted{err, "sign the host key with \"keyhole ca sign --host\" or \"ssh-keygen -h\""}
	}
	return append(signers, cs), nil
}
