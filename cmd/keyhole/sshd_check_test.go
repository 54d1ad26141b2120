package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// TestCheckConfigStrictSSHD runs "serve --check-config --strict" against a
// real "sshd -T -f CONFIG" on generated sshd configurations: sshd trusting
// keyhole's user CA fails the check; another CA, or the same CA behind an
// AuthorizedPrincipalsFile, passes; a configuration sshd refuses is parsed
// instead.
func TestCheckConfigStrictSSHD(t *testing.T) {
	sshd := testenv.SSHDPath()
	if sshd == "" {
		t.Skip("OpenSSH sshd not installed (apt-get install openssh-server)")
	}
	dir := t.TempDir()
	ca := testenv.NewKey(t, dir, "keyhole_ca")
	other := testenv.NewKey(t, dir, "other_ca")
	agent := testenv.NewKey(t, dir, "agent")
	hostKey := testenv.NewKey(t, dir, "sshd_host_key")
	home := filepath.Join(dir, "home", "ops")
	mustOK(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	agentPub := readText(t, agent+".pub")
	mustOK(t, os.WriteFile(filepath.Join(home, ".ssh", "keyhole_only_keys"), []byte(agentPub), 0o600))
	passwd := filepath.Join(dir, "passwd")
	mustOK(t, os.WriteFile(passwd, []byte("ops:x:1000:1000::"+home+":/bin/sh\n"), 0o644))
	f := strings.Fields(agentPub)
	keysLine := `principals="logs" ` + f[0] + " " + f[1] + " agent-9\n"
	mustOK(t, os.WriteFile(filepath.Join(dir, "keys"), []byte(keysLine), 0o600))
	mustOK(t, os.MkdirAll(filepath.Join(dir, "policies"), 0o755))
	mustOK(t, os.WriteFile(filepath.Join(dir, "policies", "none.cedar"), []byte("@id(\"nothing\")\nforbid (principal, action, resource);\n"), 0o644))
	cfg := filepath.Join(dir, "keyhole.toml")
	mustOK(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`listen = "127.0.0.1:0"
host_key = "host_key"
trusted_user_ca_keys = %q
keys_file = "keys"
policy_dir = "policies"
audit_log = "audit.log"
`, ca+".pub")), 0o600))
	caFP := keyFingerprint(t, ca+".pub")

	base := "HostKey " + hostKey + "\nPidFile none\nUsePAM no\n"
	// docs/deploy.md's way to share one CA with sshd.
	deploy := readText(t, "../../docs/deploy.md")
	_, shared, ok := strings.Cut(deploy, "<!-- file: sshd_config -->\n```\n")
	if !ok {
		t.Fatal("docs/deploy.md has no sshd_config block")
	}
	shared, _, _ = strings.Cut(shared, "```")
	shared = strings.ReplaceAll(shared, "/etc/ssh/user_ca.pub", ca+".pub")
	for _, tc := range []struct {
		name   string
		config string
		fail   bool
		want   string // regexp on stderr
	}{
		{"sshd-trusts-keyhole-ca", "TrustedUserCAKeys " + ca + ".pub\n", true,
			`keyhole: error: sshd \(` + regexp.QuoteMeta(sshd) + ` -T -f .*sshd_config\) trusts user CA ` + regexp.QuoteMeta(caFP)},
		{"sshd-trusts-another-ca", "TrustedUserCAKeys " + other + ".pub\n", false, `^$`},
		{"sshd-principals-file", "TrustedUserCAKeys " + ca + ".pub\nAuthorizedPrincipalsFile /etc/ssh/principals/%u\n", false, `^$`},
		{"deploy-md-shared-ca", shared, false, `^$`},
		{"sshd-authorized-keys-file", "AuthorizedKeysFile .ssh/keyhole_only_keys\n", true,
			regexp.QuoteMeta(filepath.Join(home, ".ssh", "keyhole_only_keys")) + `:1 lists key .* \(line 1, user agent-9\): it also opens a shell as local user ops`},
		// sshd -T refuses an unknown keyword: the file is parsed instead,
		// and the message names the file, not sshd -T.
		{"sshd-refuses-config", "NoSuchKeyword yes\nTrustedUserCAKeys " + ca + ".pub\n", true,
			`keyhole: error: sshd \([^ ]*sshd_config\) trusts user CA ` + regexp.QuoteMeta(caFP)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := t.TempDir()
			conf := filepath.Join(sub, "sshd_config")
			mustOK(t, os.WriteFile(conf, []byte(base+tc.config), 0o600))
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"serve", "--check-config", cfg, "--strict",
				"--sshd", sshd, "--sshd-config", conf, "--passwd", passwd}, &stdout, &stderr)
			if (code != 0) != tc.fail {
				t.Fatalf("exit %d, want failure %v\nstdout: %s\nstderr: %s", code, tc.fail, stdout.String(), stderr.String())
			}
			if !regexp.MustCompile(`(?m)` + tc.want).MatchString(stderr.String()) {
				t.Fatalf("stderr does not match %q:\n%s", tc.want, stderr.String())
			}
			if !tc.fail && !strings.Contains(stdout.String(), ": OK: ") {
				t.Fatalf("no OK line: %q", stdout.String())
			}
		})
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	mustOK(t, err)
	return string(b)
}

// keyFingerprint is the SHA256 fingerprint ssh-keygen prints for a public key.
func keyFingerprint(t *testing.T, pub string) string {
	t.Helper()
	out := testenv.Keygen(t, "-l", "-f", pub)
	f := strings.Fields(out)
	if len(f) < 2 {
		t.Fatalf("ssh-keygen -l: %q", out)
	}
	return f[1]
}
