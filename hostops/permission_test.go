package hostops_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/keyhole-dev/keyhole/hostops"
)

const asNobodyEnv = "HOSTOPS_TEST_AS_NOBODY"

// TestPermissionDenied checks that the host's own refusals (EACCES) are
// IO_ERROR after an allow, and still ACCESS_DENIED where policy forbids.
// Root reads anything, so as root the test runs itself again as nobody.
func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		if os.Getenv(asNobodyEnv) != "" {
			t.Fatal("still root after dropping to nobody")
		}
		// The test binary sits in a private directory: copy it where
		// nobody can run it.
		dir, err := os.MkdirTemp("", "hostops-nobody-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		bin, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		exe := filepath.Join(dir, "hostops.test")
		if err := os.WriteFile(exe, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^TestPermissionDenied$", "-test.v", "-test.count=1")
		cmd.Dir = "/"
		cmd.Env = append(os.Environ(), asNobodyEnv+"=1", "TMPDIR=/tmp")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Skipf("cannot run the test as nobody: %v", err)
		}
		if err != nil {
			t.Fatalf("as nobody: %v\n%s", err, out)
		}
		t.Logf("as nobody:\n%s", out)
		return
	}
	s := newSandbox(t)
	a, f := s.allowed, s.forbidden
	mustWrite(t, a+"/noread.txt", "x", 0o000)
	mustMkdir(t, a+"/noread-dir")
	mustMkdir(t, a+"/nosearch")
	mustWrite(t, a+"/nosearch/file", "x", 0o644)
	mustMkdir(t, f+"/nosearch")
	// noread-dir may be searched but not read; nosearch may be read but
	// not searched.
	modes := map[string]os.FileMode{a + "/noread-dir": 0o300, a + "/nosearch": 0o600, f + "/nosearch": 0o600}
	for d, m := range modes {
		if err := os.Chmod(d, m); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for d := range modes {
			os.Chmod(d, 0o755)
		}
	})
	tests := []struct {
		name   string
		action string
		path   string
		want
	}{
		{name: "unreadable-file", action: "read", path: a + "/noread.txt",
			want: want{kind: hostops.KindIOError, resource: a + "/noread.txt", decision: "allow",
				msg: "read " + a + "/noread.txt: permission denied"}},
		{name: "unreadable-directory", action: "list", path: a + "/noread-dir",
			want: want{kind: hostops.KindIOError, resource: a + "/noread-dir", decision: "allow"}},
		{name: "unsearchable-directory", action: "read", path: a + "/nosearch/file",
			want: want{kind: hostops.KindIOError, resource: a + "/nosearch/file", decision: "allow",
				msg: "read " + a + "/nosearch/file: permission denied"}},
		{name: "unsearchable-forbidden-directory", action: "read", path: f + "/nosearch/file",
			want: want{kind: hostops.KindAccessDenied, resource: f + "/nosearch/file", decision: "deny"}},
		{name: "stat-in-unsearchable-directory", action: "stat", path: a + "/nosearch/file",
			want: want{kind: hostops.KindIOError, resource: a + "/nosearch/file", decision: "allow"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, mem := newHost(s.policy())
			expect(t, mem, tc.action, func() error {
				var err error
				switch tc.action {
				case "read":
					_, err = h.Read(tc.path, 0)
				case "list":
					_, err = h.List(tc.path)
				case "stat":
					_, err = h.Stat(tc.path)
				}
				return err
			}, tc.want)
		})
	}
}
