package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// readmeConfig returns README's reference config block: the TOML block
// of its "Configuration" section, the one TestConfigDocsListEveryKey
// checks against the config struct.
func readmeConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := fencedBlocks(section(t, string(b), "### Configuration"), "toml")
	if len(blocks) == 0 {
		t.Fatal("README's Configuration section has no toml block")
	}
	return blocks[0]
}

// TestREADMEConfigBlock decodes README's config block as serve does:
// every key is known, and the keys of stopping and the audit log say what
// the defaults are.
func TestREADMEConfigBlock(t *testing.T) {
	t.Parallel()
	var c config
	md, err := toml.Decode(readmeConfig(t), &c)
	if err != nil {
		t.Fatal(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Fatalf("README config block has unknown keys %v", und)
	}
	if c.ShutdownGrace == nil || c.ShutdownGrace.Duration != defaultShutdownGrace || defaultShutdownGrace != 30*time.Second {
		t.Errorf("README shutdown_grace %v, default %s", c.ShutdownGrace, defaultShutdownGrace)
	}
	if c.AuditSyslog {
		t.Error("README audit_syslog is not the default (false)")
	}
}

// TestLogrotateExample checks contrib/logrotate/keyhole against the README
// (the audit_log path) and against what keyhole needs: rename and
// SIGUSR1 to the server process only, never copytruncate, compression
// delayed. Where logrotate is installed, it parses the file in debug mode
// (which changes nothing). TestServeSIGUSR1DuringBurst runs the rename
// and the signal against the real server.
func TestLogrotateExample(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "contrib", "logrotate", "keyhole")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var c config
	if _, err := toml.Decode(readmeConfig(t), &c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "\n"+c.AuditLog+" {\n") {
		t.Errorf("%s does not rotate README's audit_log %s", path, c.AuditLog)
	}
	var directives []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			directives = append(directives, line)
		}
	}
	has := func(d string) bool {
		for _, x := range directives {
			if x == d {
				return true
			}
		}
		return false
	}
	for _, d := range []string{"delaycompress", "postrotate", "systemctl kill --kill-whom=main --signal=USR1 keyhole.service", "endscript"} {
		if !has(d) {
			t.Errorf("%s lacks %q", path, d)
		}
	}
	if regexp.MustCompile(`(?m)^\s*copytruncate`).MatchString(text) {
		t.Errorf("%s uses copytruncate, which loses lines", path)
	}
	lr, err := exec.LookPath("logrotate")
	if err != nil {
		t.Log("logrotate not installed: its parse of the file is not checked")
		return
	}
	out, err := exec.Command(lr, "-d", "-s", filepath.Join(t.TempDir(), "state"), path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "error:") {
		t.Errorf("logrotate -d: %v\n%s", err, out)
	}
}
