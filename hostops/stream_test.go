package hostops_test

import (
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/hostops"
)

// dirTree describes every entry under dir by name: mode and content.
func dirTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := os.Lstat(dir + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		desc := info.Mode().String()
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(dir + "/" + e.Name())
			desc += " " + string(b)
		}
		out[e.Name()] = desc
	}
	return out
}

func TestStreamRead(t *testing.T) {
	s := rwSandbox(t)
	tests := []struct {
		name, path, kind string
		want             string
	}{
		{"allowed", s.path("allowed/public.txt"), "", "public data\n"},
		{"through-symlink", s.path("allowed/link-public"), "", "public data\n"},
		{"symlink-to-forbidden", s.path("allowed/link-secret"), hostops.KindAccessDenied, ""},
		{"dir-symlink-to-forbidden", s.path("allowed/linkdir-forbidden/secret"), hostops.KindAccessDenied, ""},
		{"fifo", s.path("allowed/fifo"), hostops.KindInvalidArgument, ""},
		{"dir", s.path("allowed/sub"), hostops.KindInvalidArgument, ""},
		{"relative", "allowed/public.txt", hostops.KindInvalidArgument, ""},
		{"nul", s.path("allowed/public.txt\x00"), hostops.KindInvalidArgument, ""},
		{"missing", s.path("allowed/nope"), hostops.KindNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, mem := newHost(s.policy())
			r, err := h.StreamRead(tt.path)
			if n := len(mem.Events()); n != 1 {
				t.Errorf("%d audit lines, want 1", n)
			}
			if tt.kind != "" {
				checkKind(t, err, tt.kind, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			buf := make([]byte, 64)
			n, err := r.ReadAt(buf, 7)
			if err != io.EOF || string(buf[:n]) != tt.want[7:] {
				t.Errorf("ReadAt = %q, %v", buf[:n], err)
			}
		})
	}
}

func TestStreamReadBudget(t *testing.T) {
	s, h, _ := countedHost(t, 5, 0)
	r, err := h.StreamRead(s.path("allowed/public.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 64)
	n, err := r.ReadAt(buf, 0)
	checkKind(t, err, hostops.KindLimitExceeded, "read limit of 5 bytes")
	if n > 0 {
		t.Errorf("%d bytes returned past the budget", n)
	}
}

func TestUpload(t *testing.T) {
	tests := []struct {
		name  string
		path  string // relative to allowed/rw
		mode  int64
		flags hostops.UploadFlags
		write string
		kind  string // error of StartUpload
		abort bool
		want  string // content after, "" when missing
		perm  os.FileMode
	}{
		{name: "create", path: "new.txt", mode: hostops.KeepMode, flags: hostops.UploadFlags{Truncate: true, CreateMode: 0o600}, write: "new", want: "new", perm: 0o600},
		{name: "replace-keeps-mode", path: "old.txt", mode: hostops.KeepMode, flags: hostops.UploadFlags{Truncate: true, CreateMode: 0o666}, write: "new", want: "new", perm: 0o640},
		{name: "abort-keeps-old", path: "old.txt", mode: hostops.KeepMode, flags: hostops.UploadFlags{Truncate: true}, write: "new", abort: true, want: "old", perm: 0o640},
		{name: "abort-new", path: "new.txt", mode: hostops.KeepMode, flags: hostops.UploadFlags{Truncate: true}, write: "new", abort: true},
		{name: "no-truncate-overlays-old", path: "old.txt", mode: hostops.KeepMode, write: "N", want: "Nld", perm: 0o640},
		{name: "through-symlink", path: "link-old", mode: hostops.KeepMode, flags: hostops.UploadFlags{Truncate: true}, write: "new", want: "new", perm: 0o640},
		{name: "exclusive-exists", path: "old.txt", mode: hostops.KeepMode, flags: hostops.UploadFlags{Exclusive: true}, kind: hostops.KindInvalidArgument, want: "old", perm: 0o640},
		{name: "symlink-to-forbidden", path: "link-secret", mode: hostops.KeepMode, kind: hostops.KindAccessDenied},
		{name: "dir-symlink-to-forbidden", path: "link-forbidden-dir/secret", mode: hostops.KeepMode, kind: hostops.KindAccessDenied},
		{name: "dangling", path: "dangling", mode: hostops.KeepMode, kind: hostops.KindAccessDenied},
		{name: "fifo", path: "fifo", mode: hostops.KeepMode, kind: hostops.KindInvalidArgument},
		{name: "dir", path: "dir", mode: hostops.KeepMode, kind: hostops.KindInvalidArgument},
		{name: "bad-mode", path: "new.txt", mode: 0o4755, kind: hostops.KindInvalidArgument},
		{name: "relative", path: "", mode: hostops.KeepMode, kind: hostops.KindInvalidArgument},
	}
	for _, tmpfile := range []bool{true, false} {
		for _, tt := range tests {
			name := tt.name
			if !tmpfile {
				name += "-named-temp"
			}
			t.Run(name, func(t *testing.T) {
				if !tmpfile {
					hostops.WithoutTmpfile(t)
				}
				s := rwSandbox(t)
				rw := s.path("allowed/rw")
				forbidden := dirTree(t, s.forbidden)
				h, mem := newHost(s.writePolicy())
				p := rw + "/" + tt.path
				if tt.name == "relative" {
					p = "allowed/rw/x"
				}
				before := dirTree(t, rw)
				u, err := h.StartUpload(p, tt.mode, tt.flags)
				if n := len(mem.Events()); n != 1 {
					t.Errorf("%d audit lines, want 1", n)
				}
				if tt.kind != "" {
					checkKind(t, err, tt.kind, "")
					if after := dirTree(t, rw); !reflect.DeepEqual(before, after) {
						t.Errorf("refused upload changed the directory:\n%v\n%v", before, after)
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					if _, err := u.WriteAt([]byte(tt.write), 0); err != nil {
						t.Fatal(err)
					}
					if tt.abort {
						u.Abort()
					} else if err := u.Commit(); err != nil {
						t.Fatal(err)
					}
					target := p
					if tt.path == "link-old" {
						target = rw + "/old.txt"
					}
					b, err := os.ReadFile(target)
					switch {
					case tt.want == "" && !os.IsNotExist(err):
						t.Errorf("%s exists: %q %v", target, b, err)
					case tt.want != "" && string(b) != tt.want:
						t.Errorf("%s = %q, %v; want %q", target, b, err, tt.want)
					}
					if tt.perm != 0 {
						if st, err := os.Stat(target); err != nil || st.Mode().Perm() != tt.perm {
							t.Errorf("mode %v, want %v", st.Mode().Perm(), tt.perm)
						}
					}
				}
				for name := range dirTree(t, rw) {
					if strings.HasPrefix(name, hostops.TempPrefix) {
						t.Errorf("temporary file %s left", name)
					}
				}
				if after := dirTree(t, s.forbidden); !reflect.DeepEqual(forbidden, after) {
					t.Errorf("forbidden changed:\n%v\n%v", forbidden, after)
				}
			})
		}
	}
}

func TestUploadLimitsAndChanges(t *testing.T) {
	s, h, _ := countedHost(t, 0, 8)
	rw := s.path("allowed/rw")
	u, err := h.StartUpload(rw+"/old.txt", hostops.KeepMode, hostops.UploadFlags{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteAt([]byte("12345"), 0); err != nil {
		t.Fatal(err)
	}
	_, err = u.WriteAt([]byte("6789"), 5)
	checkKind(t, err, hostops.KindLimitExceeded, "write limit of 8 bytes")
	u.Abort()
	if b, _ := os.ReadFile(rw + "/old.txt"); string(b) != "old" {
		t.Errorf("old.txt = %q", b)
	}

	// A name replaced while the upload ran is not overwritten.
	h2, _ := newHost(s.writePolicy())
	u, err = h2.StartUpload(rw+"/old2.txt", hostops.KeepMode, hostops.UploadFlags{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteAt([]byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	must(t, os.Remove(rw+"/old2.txt"))
	mustWrite(t, rw+"/old2.txt", "swapped in", 0o644)
	if err := u.Commit(); err == nil {
		t.Error("commit over a replaced name succeeded")
	}
	if b, _ := os.ReadFile(rw + "/old2.txt"); string(b) != "swapped in" {
		t.Errorf("old2.txt = %q", b)
	}
	if _, err := u.WriteAt([]byte("x"), 0); err == nil {
		t.Error("write after the end succeeded")
	}
}

func TestUploadTruncate(t *testing.T) {
	s := rwSandbox(t)
	h, _ := newHost(s.writePolicy())
	rw := s.path("allowed/rw")
	mustWrite(t, rw+"/long.txt", "a long old content", 0o644)
	u, err := h.StartUpload(rw+"/long.txt", hostops.KeepMode, hostops.UploadFlags{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteAt([]byte("short"), 0); err != nil {
		t.Fatal(err)
	}
	if err := u.Truncate(-1); err == nil {
		t.Error("negative size accepted")
	}
	if err := u.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(rw + "/long.txt"); string(b) != "short" {
		t.Errorf("long.txt = %q", b)
	}
}

func TestSetTimes(t *testing.T) {
	s := rwSandbox(t)
	rw := s.path("allowed/rw")
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		name, path, kind string
	}{
		{"file", rw + "/old.txt", ""},
		{"dir", rw + "/dir", ""},
		{"forbidden-via-link", rw + "/link-secret", hostops.KindAccessDenied},
		{"hard-linked", rw + "/hard", hostops.KindInvalidArgument},
		{"fifo", rw + "/fifo", hostops.KindInvalidArgument},
		{"read-only-area", s.path("allowed/public.txt"), hostops.KindAccessDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, mem := newHost(s.writePolicy())
			before, _ := os.Stat(tt.path)
			err := h.SetTimes(tt.path, mtime, mtime)
			if n := len(mem.Events()); n != 1 || mem.Events()[0].Action != "write" {
				t.Errorf("audit lines %v, want one write", mem.Events())
			}
			after, _ := os.Stat(tt.path)
			if tt.kind != "" {
				checkKind(t, err, tt.kind, "")
				if before != nil && !after.ModTime().Equal(before.ModTime()) {
					t.Error("times changed")
				}
				return
			}
			if err != nil || !after.ModTime().Equal(mtime) {
				t.Errorf("mtime %v, %v", after.ModTime(), err)
			}
		})
	}
}

func TestListVisible(t *testing.T) {
	s := rwSandbox(t)
	p := s.policy()
	// The sandbox's policy lets stat reach everything under allowed but
	// sub; a forbid hides it.
	p.rules = append(p.rules, rule{id: "hide-sub", forbid: true, actions: []string{"stat"}, under: []string{s.path("allowed/sub")}})
	h, mem := newHost(p)
	vs, err := h.ListVisible(s.allowed)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
		if v.Name == "link-secret" && v.Info.Type != "symlink" {
			t.Errorf("link-secret described as %s, want its own lstat", v.Info.Type)
		}
	}
	got := strings.Join(names, " ")
	if strings.Contains(got, " sub ") || !strings.Contains(got, "public.txt") || !strings.Contains(got, "rw") {
		t.Errorf("entries %q", got)
	}
	if n := len(mem.Events()); n != 1 {
		t.Errorf("%d audit lines, want 1 (entries are decided without lines)", n)
	}
	_, err = h.ListVisible(s.forbidden)
	checkKind(t, err, hostops.KindAccessDenied, "")
	_, err = h.ListVisible(s.path("allowed/public.txt"))
	checkKind(t, err, hostops.KindInvalidArgument, "")
}
