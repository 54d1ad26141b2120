package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDevCommandsWork starts "keyhole dev", runs the exact ssh commands it
// prints with the stock client, and checks what each promises.
func TestDevCommandsWork(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("ssh not installed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"dev"}, pw, &stderr)
		pw.Close()
	}()

	// Read the instructions: every "  ssh …" line, keyed by the line
	// before it.
	cmds := map[string]string{}
	var dir string
	sc := bufio.NewScanner(pr)
	prev := ""
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "policy:") {
			dir = strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(line, "policy:")), "/policies/dev.cedar")
		}
		if strings.HasPrefix(line, "  ssh ") || strings.HasPrefix(line, "  scp ") {
			cmds[prev] = strings.TrimSpace(line)
		}
		if strings.HasPrefix(line, "watch decisions") {
			break
		}
		prev = line
	}
	go io.Copy(io.Discard, pr)
	if len(cmds) < 4 || dir == "" {
		t.Fatalf("instructions incomplete: %v\nstderr: %s", cmds, stderr.String())
	}

	work := t.TempDir() // where a command that copies a file here puts it
	sh := func(cmd string) (string, string, int) {
		c := exec.Command("sh", "-c", cmd)
		c.Dir = work
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		c.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	tests := []struct {
		heading    string
		wantExit   int
		wantStdout string
		wantStderr string
	}{
		{"read an allowed file:", 0, "service started", ""},
		{"list an allowed directory:", 0, "app.log file", ""},
		{"get denied (exit status 13, ACCESS_DENIED naming the policy):", 13, "", `ACCESS_DENIED: read .*/secrets/token denied for User::"dev-user" in Role::"dev" \(policy no-secrets\)`},
		{"get denied through a symlink that points into secrets/:", 13, "", `ACCESS_DENIED: read .*/secrets/token denied`},
		{"observe a denial and carry on:", 0, "ACCESS_DENIED", ""},
		{"copy an allowed file here with scp (through the sftp subsystem, under the same policy):", 0, "", ""},
	}
	for _, tc := range tests {
		cmd, ok := cmds[tc.heading]
		if !ok {
			t.Errorf("no command under %q", tc.heading)
			continue
		}
		out, errOut, code := sh(cmd)
		if code != tc.wantExit || !strings.Contains(out, tc.wantStdout) || !regexp.MustCompile(tc.wantStderr).MatchString(errOut) {
			t.Errorf("%s\n%s\nexit %d stdout %q stderr %q", tc.heading, cmd, code, out, errOut)
		}
	}
	if b, err := os.ReadFile(filepath.Join(work, "app.log")); err != nil || !strings.Contains(string(b), "service started") {
		t.Errorf("scp's copy: %q, %v", b, err)
	}
	audit, err := os.ReadFile(dir + "/audit.log")
	if err != nil || !bytes.Contains(audit, []byte(`"decision":"deny"`)) {
		t.Errorf("audit log: %v\n%s", err, audit)
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("dev exited %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dev did not stop")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("throwaway directory %s left behind: %v", dir, err)
	}
}
