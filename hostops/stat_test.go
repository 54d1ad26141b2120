package hostops_test

import (
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/hostops"
)

func TestStat(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	a, f := s.allowed, s.forbidden
	mtime := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	if err := os.Chtimes(a+"/public.txt", mtime, mtime); err != nil {
		t.Fatal(err)
	}
	uid, gid := int64(os.Getuid()), int64(os.Getgid())
	public := hostops.Info{Path: a + "/public.txt", Type: "file", Size: 12, Mode: 0o644,
		UID: uid, GID: gid, Nlink: 1, ModTime: mtime}
	tests := []struct {
		name string
		path string
		info *hostops.Info // checked in full when set
		typ  string
		want
	}{
		{name: "file", path: a + "/public.txt", info: &public,
			want: want{resource: a + "/public.txt", decision: "allow"}},
		{name: "symlink-is-followed", path: a + "/link-public", info: &public,
			want: want{resource: a + "/public.txt", decision: "allow"}},
		{name: "directory", path: a + "/sub", typ: "dir",
			want: want{resource: a + "/sub", decision: "allow"}},
		{name: "fifo", path: a + "/fifo", typ: "fifo",
			want: want{resource: a + "/fifo", decision: "allow"}},
		{name: "socket", path: a + "/sock", typ: "socket",
			want: want{resource: a + "/sock", decision: "allow"}},
		{name: "device", path: "/dev/null", typ: "device",
			want: want{resource: "/dev/null", decision: "allow"}},
		{name: "forbidden-file", path: f + "/secret",
			want: want{kind: hostops.KindAccessDenied, resource: f + "/secret", decision: "deny",
				msg: `stat ` + f + `/secret denied for User::"agent-7" in Role::"logs" (policy no-forbidden)`}},
		{name: "symlink-to-forbidden", path: a + "/link-secret",
			want: want{kind: hostops.KindAccessDenied, resource: f + "/secret", decision: "deny"}},
		{name: "missing-under-allowed", path: a + "/missing",
			want: want{kind: hostops.KindNotFound, resource: a + "/missing", decision: "allow",
				msg: "stat " + a + "/missing: no such file or directory"}},
		{name: "missing-under-forbidden", path: f + "/missing",
			want: want{kind: hostops.KindAccessDenied, resource: f + "/missing", decision: "deny"}},
		{name: "dangling-symlink-to-forbidden", path: a + "/dangling-forbidden",
			want: want{kind: hostops.KindAccessDenied, resource: f + "/nope", decision: "deny"}},
		{name: "nul-byte", path: "/\x00",
			want: want{kind: hostops.KindInvalidArgument, resource: "/\x00", decision: "deny"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, mem := newHost(s.policy("/dev/null"))
			var got hostops.Info
			expect(t, mem, "stat", func() (err error) {
				got, err = h.Stat(tc.path)
				return err
			}, tc.want)
			if tc.kind != "" {
				return
			}
			if tc.info != nil && !sameInfo(got, *tc.info) {
				t.Errorf("Stat = %+v\nwant %+v", got, *tc.info)
			}
			if tc.typ != "" && (got.Type != tc.typ || got.Path != tc.resource) {
				t.Errorf("Stat = %+v, want type %s at %s", got, tc.typ, tc.resource)
			}
		})
	}
}

func TestStatRoot(t *testing.T) {
	t.Parallel()
	h, mem := newHost(&policy{rules: []rule{{id: "all", under: []string{"/"}}}})
	info, err := h.Stat("/")
	if err != nil || info.Path != "/" || info.Type != "dir" || info.Mode&fs.ModePerm == 0 {
		t.Fatalf("Stat / = %+v, %v", info, err)
	}
	if ev := mem.Events(); len(ev) != 1 || ev[0].Resource != "/" {
		t.Fatalf("events = %+v", ev)
	}
	info, err = h.Stat("/..")
	if err != nil || info.Path != "/" {
		t.Fatalf("Stat /.. = %+v, %v", info, err)
	}
}

// sameInfo compares infos, times as instants.
func sameInfo(a, b hostops.Info) bool {
	ta, tb := a.ModTime, b.ModTime
	a.ModTime, b.ModTime = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb)
}
