package sshserver_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// TestSftpParamiko: paramiko's SFTP client round-trips put and get, and a
// denied get is a permission error. Skipped where python3-paramiko is not
// installed (.ci/run installs it).
func TestSftpParamiko(t *testing.T) {
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import paramiko").Run() != nil {
		t.Skip("python3-paramiko not installed (apt-get install python3-paramiko)")
	}
	e := startSftpEnv(t, sshserver.Limits{})
	local := filepath.Join(e.Dir, "local.txt")
	content := strings.Repeat("paramiko round trip\n", 5000)
	if err := os.WriteFile(local, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(e.Dir, "back.txt")
	host, port, _ := strings.Cut(e.Addr, ":")
	script, err := filepath.Abs("testdata/paramiko_roundtrip.py")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, script, host, port, "deploy", e.UserKey, e.UserCert,
		e.Sandbox+"/deploy", e.Sandbox+"/secrets/token", local, out)
	r := testenv.Run(t, cmd)
	if r.Exit != 0 {
		t.Fatalf("paramiko: exit %d\n%s\n%s", r.Exit, r.Stdout, r.Stderr)
	}
	wantFile(t, e.Sandbox+"/deploy/from-paramiko.txt", content)
	wantFile(t, out, content)
	for _, want := range []string{"listed ['app.conf', 'from-paramiko.txt']", "size 100000", "denied"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("stdout %q, want %q", r.Stdout, want)
		}
	}
	// paramiko opens the local file before the remote one: it stays empty.
	if b, _ := os.ReadFile(out + ".stolen"); len(b) != 0 {
		t.Errorf("forbidden bytes reached paramiko: %q", b)
	}
}
