package sshserver_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

const sftpPolicy = `
@id("sftp-root")
permit (principal in Keyhole::Role::"deploy",
        action == Keyhole::Action::"stat",
        resource == Keyhole::Dir::"/");

@id("deploy-files")
permit (principal in Keyhole::Role::"deploy",
        action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat",
                   Keyhole::Action::"write", Keyhole::Action::"create", Keyhole::Action::"delete",
                   Keyhole::Action::"mkdir", Keyhole::Action::"rename", Keyhole::Action::"chmod"],
        resource in Keyhole::Dir::"{{SANDBOX}}/deploy");

@id("no-secrets")
forbid (principal, action, resource in Keyhole::Dir::"{{SANDBOX}}/secrets");
`

var sftpFiles = map[string]string{
	"deploy/app.conf":  "old config\n",
	"secrets/token":    "TOPSECRET-4f1c\n",
	"secrets/app.conf": "secret config\n",
}

func startSftpEnv(t *testing.T, limits sshserver.Limits) *testenv.Env {
	t.Helper()
	testenv.NeedBinary(t, "sftp")
	return testenv.Start(t, testenv.Options{
		Policies: map[string]string{"sftp.cedar": sftpPolicy},
		Files:    sftpFiles,
		Limits:   limits,
	})
}

// snapshot describes every entry under dir: mode, and content or link
// target.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case info.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += " " + string(b)
		}
		out[strings.TrimPrefix(p, dir)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sftpDenies returns the deny decision lines of transport sftp whose
// resource lies under dir.
func sftpDenies(events []map[string]any, dir string) []map[string]any {
	var out []map[string]any
	for _, ev := range events {
		res, _ := ev["resource"].(string)
		if ev["event"] == "decision" && ev["decision"] == "deny" && ev["transport"] == "sftp" &&
			(res == dir || strings.HasPrefix(res, dir+"/")) {
			out = append(out, ev)
		}
	}
	return out
}

// TestSftpBatches runs each request of the stock sftp client in the
// allowed directory, where it succeeds and acts, and in the forbidden one,
// where it fails with a permission error, changes nothing on disk and
// leaves a deny line.
func TestSftpBatches(t *testing.T) {
	local := filepath.Join(t.TempDir(), "local.txt")
	if err := os.WriteFile(local, []byte("new content\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// batch is the sftp batch; D is replaced by the directory, L by
		// the local file, O by a local output path.
		batch string
		// check verifies the effect in the allowed directory.
		check func(t *testing.T, dir, out string)
	}{
		{"put", "put L D/new.txt", func(t *testing.T, dir, _ string) { wantFile(t, dir+"/new.txt", "new content\n") }},
		{"put-replace", "put L D/app.conf", func(t *testing.T, dir, _ string) { wantFile(t, dir+"/app.conf", "new content\n") }},
		{"get", "get D/app.conf O", func(t *testing.T, _, out string) { wantFile(t, out, "old config\n") }},
		{"ls", "ls -l D", nil},
		{"df", "df D", nil},
		{"stat-times", "put -p L D/app.conf", func(t *testing.T, dir, _ string) {
			st, err := os.Stat(dir + "/app.conf")
			lst, _ := os.Stat(local)
			if err != nil || !st.ModTime().Equal(lst.ModTime().Truncate(time.Second)) || st.Mode().Perm() != 0o640 {
				t.Errorf("put -p: %v %v %v, want the local file's time and mode", st.ModTime(), st.Mode(), err)
			}
		}},
		{"rename", "rename D/app.conf D/renamed.conf", func(t *testing.T, dir, _ string) {
			wantFile(t, dir+"/renamed.conf", "old config\n")
			wantMissing(t, dir+"/app.conf")
		}},
		{"rm", "rm D/app.conf", func(t *testing.T, dir, _ string) { wantMissing(t, dir+"/app.conf") }},
		{"mkdir", "mkdir D/sub", func(t *testing.T, dir, _ string) {
			if st, err := os.Stat(dir + "/sub"); err != nil || !st.IsDir() {
				t.Errorf("sub not made: %v", err)
			}
		}},
		{"rmdir", "rmdir D/empty", func(t *testing.T, dir, _ string) { wantMissing(t, dir+"/empty") }},
		{"chmod", "chmod 600 D/app.conf", func(t *testing.T, dir, _ string) {
			if st, err := os.Stat(dir + "/app.conf"); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("mode not changed: %v %v", st.Mode(), err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startSftpEnv(t, sshserver.Limits{})
			for _, d := range []string{"deploy/empty", "secrets/empty"} {
				if err := os.Mkdir(filepath.Join(e.Sandbox, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(e.Dir, "out.txt")
			batch := func(dir string) string {
				return strings.NewReplacer("D", dir, "L", local, "O", out).Replace(tt.batch) + "\n"
			}
			allowed := e.Sandbox + "/deploy"
			r := e.SFTPBatch(t, "deploy", batch(allowed))
			if r.Exit != 0 {
				t.Fatalf("allowed %s: exit %d, stderr %q", tt.name, r.Exit, r.Stderr)
			}
			if tt.check != nil {
				tt.check(t, allowed, out)
			}
			_ = os.Remove(out)
			forbidden := e.Sandbox + "/secrets"
			before := snapshot(t, forbidden)
			r = e.SFTPBatch(t, "deploy", batch(forbidden))
			if r.Exit == 0 {
				t.Fatalf("forbidden %s: exit 0, stdout %q", tt.name, r.Stdout)
			}
			// The server answers "permission denied"; for get and ls the
			// stock client globs first and reports a glob that matched
			// nothing as "not found".
			// df's failure the client reports by its exit status alone.
			if tt.name != "df" && !strings.Contains(r.Stderr, "Permission denied") && !strings.Contains(r.Stderr, "not found") {
				t.Errorf("forbidden %s: stderr %q (stdout %q), want a permission error", tt.name, r.Stderr, r.Stdout)
			}
			if after := snapshot(t, forbidden); !reflect.DeepEqual(before, after) {
				t.Errorf("forbidden %s changed the disk:\nbefore %v\nafter  %v", tt.name, before, after)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("forbidden %s: a local file was written", tt.name)
			}
			if len(sftpDenies(e.Audit(t), forbidden)) == 0 {
				t.Errorf("forbidden %s: no deny line under %s in\n%v", tt.name, forbidden, e.Audit(t))
			}
		})
	}
}

func wantFile(t *testing.T, p, want string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil || string(b) != want {
		t.Errorf("%s: %q, %v; want %q", p, b, err, want)
	}
}

func wantMissing(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("%s still there (%v)", p, err)
	}
}

// TestSftpAudit: one decision line per request with transport sftp, and
// the bytes moved on the session.end line.
func TestSftpAudit(t *testing.T) {
	e := startSftpEnv(t, sshserver.Limits{})
	local := filepath.Join(e.Dir, "up.txt")
	if err := os.WriteFile(local, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := e.Sandbox + "/deploy"
	r := e.SFTPBatch(t, "deploy", fmt.Sprintf("get %s/app.conf %s/down.txt\nput %s %s/up.txt\n", d, e.Dir, local, d))
	if r.Exit != 0 {
		t.Fatalf("exit %d: %s", r.Exit, r.Stderr)
	}
	end := e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "session.end" })
	if end["transport"] != "sftp" || !strings.Contains(end["reason"].(string), "read 11 bytes, wrote 10 bytes") {
		t.Errorf("session.end = %v", end)
	}
	var reads, creates int
	for _, ev := range decisions(e.Audit(t)) {
		if ev["transport"] != "sftp" {
			t.Errorf("decision without transport sftp: %v", ev)
		}
		switch {
		case ev["action"] == "read" && ev["resource"] == d+"/app.conf":
			reads++
		case ev["action"] == "create" && ev["resource"] == d+"/up.txt":
			creates++
		}
	}
	if reads != 1 || creates != 1 {
		t.Errorf("read lines %d, create lines %d; want 1 each", reads, creates)
	}
}

// TestSftpRefusals: link creation, owner and size changes are refused
// and audited; nothing changes.
func TestSftpRefusals(t *testing.T) {
	e := startSftpEnv(t, sshserver.Limits{})
	d := e.Sandbox + "/deploy"
	before := snapshot(t, e.Sandbox)
	for _, cmd := range []string{
		"symlink " + e.Sandbox + "/secrets/token " + d + "/link",
		"ln " + d + "/app.conf " + d + "/hard",
		"chown 1234 " + d + "/app.conf",
		"chgrp 1234 " + d + "/app.conf",
	} {
		r := e.SFTPBatch(t, "deploy", cmd+"\n")
		if r.Exit == 0 {
			t.Errorf("%s: exit 0", cmd)
		}
	}
	if after := snapshot(t, e.Sandbox); !reflect.DeepEqual(before, after) {
		t.Errorf("the disk changed:\nbefore %v\nafter  %v", before, after)
	}
	n := 0
	for _, ev := range e.Audit(t) {
		if ev["event"] == "request.refused" && ev["transport"] == "sftp" {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d refusal lines, want 4:\n%v", n, e.Audit(t))
	}
}

// TestSCP: OpenSSH 9 scp (SFTP mode) up and down, exit 0; a denial is a
// non-zero exit; the legacy protocol (-O) gets one clear line.
func TestSCP(t *testing.T) {
	testenv.NeedBinary(t, "scp")
	e := startSftpEnv(t, sshserver.Limits{})
	d := e.Sandbox + "/deploy"
	local := filepath.Join(e.Dir, "up.txt")
	if err := os.WriteFile(local, []byte("uploaded by scp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(e.Dir, "short.txt")
	if err := os.WriteFile(short, []byte("short\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d+"/longer.conf", []byte("a much longer old configuration\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(e.Dir, "tree")
	for name, content := range map[string]string{"a.txt": "a\n", "sub/b.txt": "b\n"} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(tree, name)), 0o755))
		must(t, os.WriteFile(filepath.Join(tree, name), []byte(content), 0o644))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tests := []struct {
		name     string
		args     []string
		wantExit bool // exit 0
		stderr   string
		check    func(t *testing.T)
	}{
		{"upload", []string{local, "R:" + d + "/up.txt"}, true, "", func(t *testing.T) { wantFile(t, d+"/up.txt", "uploaded by scp\n") }},
		// scp opens an existing file without truncating, writes, then sets
		// the size: the result is exactly the new file.
		{"upload-over-longer", []string{short, "R:" + d + "/longer.conf"}, true, "", func(t *testing.T) { wantFile(t, d+"/longer.conf", "short\n") }},
		{"upload-recursive", []string{"-r", tree, "R:" + d + "/tree"}, true, "", func(t *testing.T) {
			wantFile(t, d+"/tree/a.txt", "a\n")
			wantFile(t, d+"/tree/sub/b.txt", "b\n")
		}},
		{"download-recursive", []string{"-r", "R:" + d + "/tree", e.Dir + "/tree-back"}, true, "", func(t *testing.T) {
			wantFile(t, e.Dir+"/tree-back/sub/b.txt", "b\n")
		}},
		{"download", []string{"R:" + d + "/app.conf", e.Dir + "/down.txt"}, true, "", func(t *testing.T) { wantFile(t, e.Dir+"/down.txt", "old config\n") }},
		{"upload-denied", []string{local, "R:" + e.Sandbox + "/secrets/token"}, false, "Permission denied", func(t *testing.T) {
			wantFile(t, e.Sandbox+"/secrets/token", "TOPSECRET-4f1c\n")
		}},
		{"download-denied", []string{"R:" + e.Sandbox + "/secrets/token", e.Dir + "/stolen"}, false, "", func(t *testing.T) { // scp globs first: "No such file"
			wantMissing(t, e.Dir+"/stolen")
		}},
		{"legacy-upload", []string{"-O", local, "R:" + d + "/legacy.txt"}, false, "drop -O", func(t *testing.T) { wantMissing(t, d+"/legacy.txt") }},
		{"legacy-download", []string{"-O", "R:" + d + "/app.conf", e.Dir + "/legacy"}, false, "drop -O", func(t *testing.T) { wantMissing(t, e.Dir+"/legacy") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testenv.Run(t, e.SCPCommand(ctx, "deploy", tt.args...))
			if (r.Exit == 0) != tt.wantExit {
				t.Fatalf("exit %d, stderr %q", r.Exit, r.Stderr)
			}
			if !strings.Contains(r.Stderr, tt.stderr) {
				t.Errorf("stderr %q, want %q", r.Stderr, tt.stderr)
			}
			if tt.stderr == "drop -O" && strings.Count(r.Stderr, "keyhole:") != 1 {
				t.Errorf("legacy scp: want one line, got %q", r.Stderr)
			}
			tt.check(t)
		})
	}
	if n := len(sftpDenies(e.Audit(t), e.Sandbox+"/secrets")); n < 2 {
		t.Errorf("%d deny lines under secrets, want one per denied copy", n)
	}
	legacy := 0
	for _, ev := range e.Audit(t) {
		if r, _ := ev["reason"].(string); ev["event"] == "request.refused" && strings.HasPrefix(r, "legacy scp protocol") {
			legacy++
		}
	}
	if legacy != 2 {
		t.Errorf("%d legacy scp refusal lines, want 2", legacy)
	}
}

// TestSftpNeedsStatOfRoot: the stock client asks for the real path of "."
// when it starts, a stat of Dir::"/"; a policy that does not permit it
// gets a client that says why and stops (docs/files.md).
func TestSftpNeedsStatOfRoot(t *testing.T) {
	testenv.NeedBinary(t, "sftp")
	e := startEnv(t, sshserver.Limits{}) // the logs policy: no stat of "/"
	r := e.SFTPBatch(t, "logs", "ls "+e.Sandbox+"/logs\n")
	if r.Exit == 0 || !strings.Contains(r.Stderr, "stat / denied for") || !strings.Contains(r.Stderr, "Need cwd") {
		t.Errorf("exit %d, stderr %q", r.Exit, r.Stderr)
	}
}
