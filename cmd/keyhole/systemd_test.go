package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitPath = "../../contrib/systemd/keyhole.service"

// verifyUnit runs systemd-analyze verify on unit text, with the keyhole
// binary path replaced by an executable that exists here, and returns
// what it says about the unit and whether it failed.
func verifyUnit(t *testing.T, bin, text string) (string, bool) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "keyhole.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "/usr/local/bin/keyhole", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "verify", "--man=no", p)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_TARGET=console", "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	var about []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "keyhole.service") {
			about = append(about, line)
		}
	}
	return strings.Join(about, "\n"), err != nil || len(about) > 0
}

// TestSystemdUnit checks contrib/systemd/keyhole.service with
// systemd-analyze verify (a misspelt directive is reported, so the check
// itself is shown to work), and that every group of directives has a
// comment saying why.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)

	prevComment := false
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "["):
			prevComment = false
		case strings.HasPrefix(line, "#"):
			prevComment = true
		case strings.Contains(line, "="):
			if !prevComment && !strings.HasPrefix(line, "Description=") && !strings.HasPrefix(line, "Documentation=") && !strings.HasPrefix(line, "WantedBy=") {
				t.Errorf("%s:%d: %q has no comment saying why", unitPath, i+1, line)
			}
		}
	}
	for _, want := range []string{"--check-config /etc/keyhole/keyhole.toml", "--config /etc/keyhole/keyhole.toml", "NoNewPrivileges=yes", "KillMode=mixed"} {
		if !strings.Contains(text, want) {
			t.Errorf("unit lacks %q", want)
		}
	}

	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (systemd is not on this machine): the unit is not verified")
	}
	if out, bad := verifyUnit(t, bin, text); bad {
		t.Fatalf("systemd-analyze verify %s:\n%s", unitPath, out)
	}
	broken := strings.Replace(text, "NoNewPrivileges=yes", "NoNewPrivileges=yes\nProtectSystme=yes", 1)
	if out, bad := verifyUnit(t, bin, broken); !bad || !strings.Contains(out, "ProtectSystme") {
		t.Fatalf("systemd-analyze verify did not report a misspelt directive: %q", out)
	}
}
