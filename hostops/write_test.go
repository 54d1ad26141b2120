package hostops_test

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/hostops"
)

// writePolicy lets agent-7 read, list and stat below allowed and change
// anything below allowed/rw; nothing below forbidden.
func (s *sandbox) writePolicy() *policy {
	p := s.policy()
	p.rules = append(p.rules, rule{id: "rw", actions: []string{"write", "create", "delete", "mkdir", "rename", "chmod"},
		under: []string{s.path("allowed/rw")}})
	return p
}

// rwSandbox is newSandbox plus:
//
//	allowed/rw/                 changeable
//	allowed/rw/old.txt          "old" 0640, and old2.txt
//	allowed/rw/dir/
//	allowed/rw/fifo
//	allowed/rw/hard             hard link of forbidden/hard
//	allowed/rw/link-old      -> old.txt
//	allowed/rw/link-secret   -> <root>/forbidden/secret
//	allowed/rw/link-forbidden-dir -> <root>/forbidden
//	allowed/rw/dangling      -> <root>/forbidden/nope
//	allowed/rw/dangling-rw   -> missing
//	forbidden/hard              "hard secret"
func rwSandbox(t testing.TB) *sandbox {
	t.Helper()
	s := newSandbox(t)
	rw := s.path("allowed/rw")
	mustMkdir(t, rw+"/dir")
	mustWrite(t, rw+"/old.txt", "old", 0o640)
	mustWrite(t, rw+"/old2.txt", "old", 0o640)
	mustWrite(t, s.path("forbidden/hard"), "hard secret", 0o644)
	must(t, os.Link(s.path("forbidden/hard"), rw+"/hard"))
	must(t, mkfifo(rw+"/fifo"))
	for name, to := range map[string]string{
		"link-old": "old.txt", "link-secret": s.path("forbidden/secret"), "link-forbidden-dir": s.forbidden,
		"dangling": s.path("forbidden/nope"), "dangling-rw": "missing",
	} {
		must(t, os.Symlink(to, rw+"/"+name))
	}
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tree describes every entry under dir: mode, contents' hash or link
// target, and link count.
func tree(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s", strings.TrimPrefix(p, dir), fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		case fi.Mode()&fs.ModeSymlink != 0:
			to, _ := os.Readlink(p)
			b.WriteString(" -> " + to)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// noTemps fails if dir holds a temporary file of hostops.
func noTemps(t testing.TB, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), hostops.TempPrefix) {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

func TestWrite(t *testing.T) {
	t.Parallel()
	runWriteCases(t, true)
}

// TestWriteWithoutTmpfile runs the same cases with named temporary files.
// It must not run in parallel.
func TestWriteWithoutTmpfile(t *testing.T) {
	hostops.WithoutTmpfile(t)
	runWriteCases(t, false)
}

func runWriteCases(t *testing.T, parallel bool) {
	type writeCase struct {
		name   string
		action string // the action audited
		path   string
		data   string
		mode   int64
		check  string // path that must then hold data ("" when the write fails)
		perm   fs.FileMode
		want
	}
	s := rwSandbox(t)
	tmpl := s
	rw, f := s.path("allowed/rw"), s.forbidden
	cases := []writeCase{
		{name: "create", action: "create", path: rw + "/new.txt", data: "new", mode: hostops.KeepMode, check: rw + "/new.txt", perm: 0o644,
			want: want{resource: rw + "/new.txt", decision: "allow"}},
		{name: "create-with-mode", action: "create", path: rw + "/new600", data: "x", mode: 0o600, check: rw + "/new600", perm: 0o600,
			want: want{resource: rw + "/new600", decision: "allow"}},
		{name: "replace-keeps-mode", action: "write", path: rw + "/old2.txt", data: "replaced", mode: hostops.KeepMode, check: rw + "/old2.txt", perm: 0o640,
			want: want{resource: rw + "/old2.txt", decision: "allow"}},
		{name: "through-symlink-replaces-target", action: "write", path: rw + "/link-old", data: "via link", mode: hostops.KeepMode, check: rw + "/old.txt", perm: 0o640,
			want: want{resource: rw + "/old.txt", decision: "allow"}},
		{name: "hard-link-replaced-not-shared", action: "write", path: rw + "/hard", data: "own copy", mode: 0o644, check: rw + "/hard", perm: 0o644,
			want: want{resource: rw + "/hard", decision: "allow"}},
		{name: "forbidden-file", action: "write", path: f + "/secret", data: "pwned", mode: 0o644,
			want: want{kind: hostops.KindAccessDenied, resource: f + "/secret", decision: "deny", policies: []string{"no-forbidden"}}},
		{name: "forbidden-new-file", action: "create", path: f + "/new", data: "pwned", mode: 0o644,
			want: want{kind: hostops.KindAccessDenied, resource: f + "/new", decision: "deny",
				msg: `create ` + f + `/new denied for User::"agent-7" in Role::"logs" (policy no-forbidden)`}},
		{name: "dotdot-escape", action: "write", path: rw + "/../../forbidden/secret", data: "pwned", mode: 0o644,
			want: want{kind: hostops.KindAccessDenied, resource: f + "/secret", decision: "deny"}},
		{name: "final-symlink-to-forbidden", action: "write", path: rw + "/link-secret", data: "pwned", mode: 0o644,
			want: want{kind: hostops.KindAccessDenied, resource: f + "/secret", decision: "deny"}},
		{name: "parent-symlink-to-forbidden", action: "write", path: rw + "/link-forbidden-dir/secret", data: "pwned", mode: 0o644,
			want: want{kind: hostops.KindAccessDenied, resource: f + "/secret", decision: "deny"}},
		{name: "parent-symlink-to-forbidden-new", action: "create", path: rw + "/link-forbidden-dir/planted", data: "pwned", mode: 0o644,
			want: want{kind: hostops.KindAccessDenied, resource: f + "/planted", decision: "deny"}},
		{name: "dangling-symlink-to-forbidden", action: "create", path: rw + "/dangling", data: "pwned", mode: 0o644,
			want: want{kind: hostops.KindAccessDenied, resource: f + "/nope", decision: "deny"}},
		{name: "dangling-symlink-allowed-refused", action: "create", path: rw + "/dangling-rw", data: "x", mode: 0o644,
			want: want{kind: hostops.KindInvalidArgument, resource: rw + "/missing", decision: "allow", contains: "symlink to a missing object"}},
		{name: "missing-parent", action: "create", path: rw + "/nodir/x", data: "x", mode: 0o644,
			want: want{kind: hostops.KindNotFound, resource: rw + "/nodir/x", decision: "allow"}},
		{name: "missing-parent-under-forbidden", action: "create", path: f + "/nodir/x", data: "x", mode: 0o644,
			want: want{kind: hostops.KindAccessDenied, resource: f + "/nodir/x", decision: "deny"}},
		{name: "missing-then-dotdot", action: "create", path: rw + "/missing/../../../forbidden/x", data: "x", mode: 0o644,
			want: want{kind: hostops.KindNotFound, resource: rw + "/missing", decision: "allow"}},
		{name: "directory", action: "write", path: rw + "/dir", data: "x", mode: 0o644,
			want: want{kind: hostops.KindInvalidArgument, resource: rw + "/dir", decision: "allow", contains: "is a directory"}},
		{name: "fifo", action: "write", path: rw + "/fifo", data: "x", mode: 0o644,
			want: want{kind: hostops.KindInvalidArgument, resource: rw + "/fifo", decision: "allow", contains: "is a fifo"}},
		{name: "device", action: "write", path: "/dev/null", data: "x", mode: 0o644,
			want: want{kind: hostops.KindAccessDenied, resource: "/dev/null", decision: "deny"}},
		{name: "read-only-area", action: "write", path: s.path("allowed/public.txt"), data: "x", mode: 0o644,
			want: want{kind: hostops.KindAccessDenied, resource: s.path("allowed/public.txt"), decision: "deny",
				msg: `write ` + s.path("allowed/public.txt") + ` denied for User::"agent-7" in Role::"logs" (no policy permits it)`}},
		{name: "setuid-mode", action: "write", path: rw + "/suid", data: "x", mode: 0o4755,
			want: want{kind: hostops.KindInvalidArgument, resource: rw + "/suid", decision: "deny", contains: "mode must be between 0 and 0o777"}},
		{name: "trailing-slash", action: "write", path: rw + "/new/", data: "x", mode: 0o644,
			want: want{kind: hostops.KindInvalidArgument, resource: rw + "/new/", decision: "deny", contains: "must not end with a slash"}},
		{name: "dot-name", action: "write", path: rw + "/.", data: "x", mode: 0o644,
			want: want{kind: hostops.KindInvalidArgument, resource: rw + "/.", decision: "deny", contains: "must end in a name"}},
		{name: "root", action: "write", path: "/", data: "x", mode: 0o644,
			want: want{kind: hostops.KindInvalidArgument, resource: "/", decision: "deny"}},
		{name: "relative", action: "write", path: "rw/x", data: "x", mode: 0o644,
			want: want{kind: hostops.KindInvalidArgument, resource: "rw/x", decision: "deny", contains: "must be absolute"}},
		{name: "too-large", action: "create", path: rw + "/big", data: strings.Repeat("x", 101), mode: 0o644,
			want: want{kind: hostops.KindLimitExceeded, resource: rw + "/big", decision: "allow", contains: "write limit of 100 bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			// Each case gets a sandbox of its own, so a failed write can
			// be shown to change nothing anywhere.
			s := rwSandbox(t)
			tc.path = strings.ReplaceAll(tc.path, tmpl.root, s.root)
			tc.check = strings.ReplaceAll(tc.check, tmpl.root, s.root)
			tc.resource = strings.ReplaceAll(tc.resource, tmpl.root, s.root)
			tc.msg = strings.ReplaceAll(tc.msg, tmpl.root, s.root)
			f := s.forbidden
			h, mem := newHost(s.writePolicy())
			h.MaxWriteBytes = 100
			var beforeF string
			if tc.kind != "" {
				beforeF = tree(t, s.root)
			} else {
				beforeF = tree(t, f)
			}
			expect(t, mem, tc.action, func() error { return h.Write(tc.path, []byte(tc.data), tc.mode) }, tc.want)
			if tc.kind != "" {
				if after := tree(t, s.root); after != beforeF {
					t.Errorf("a failed write changed the tree:\nbefore:\n%s\nafter:\n%s", beforeF, after)
				}
				return
			}
			if after := tree(t, f); after != beforeF {
				t.Errorf("forbidden tree changed")
			}
			got, err := os.ReadFile(tc.check)
			if err != nil || string(got) != tc.data {
				t.Fatalf("%s holds %q, %v; want %q", tc.check, got, err, tc.data)
			}
			if fi, _ := os.Stat(tc.check); fi.Mode().Perm() != tc.perm {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
			}
			noTemps(t, s.root)
		})
	}
}
