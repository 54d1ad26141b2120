package hostops_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/hostops"
)

// missingPolicy permits everything a script may do to files below
// <root>/later (a directory that does not exist yet) and below <root>/srv,
// except below <root>/srv/secret and on the file <root>/srv/file-forbid.
func missingPolicy(root string) string {
	return fmt.Sprintf(`
@id("later") permit (principal, action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat",
  Keyhole::Action::"delete", Keyhole::Action::"rename", Keyhole::Action::"chmod", Keyhole::Action::"mkdir"],
  resource in Keyhole::Dir::"%[1]s/later");
@id("srv") permit (principal, action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat",
  Keyhole::Action::"delete", Keyhole::Action::"rename", Keyhole::Action::"chmod", Keyhole::Action::"mkdir"],
  resource in Keyhole::Dir::"%[1]s/srv");
@id("no-secret") forbid (principal, action, resource in Keyhole::Dir::"%[1]s/srv/secret");
@id("no-file") forbid (principal, action, resource == Keyhole::File::"%[1]s/srv/file-forbid");
`, root)
}

// missingOps are the operations that can name a path that does not exist,
// each with the action it is audited as.
func missingOps(h *hostops.Host) []struct {
	name, action string
	op           func(p string) error
} {
	return []struct {
		name, action string
		op           func(p string) error
	}{
		{"read", "read", func(p string) error { _, err := h.Read(p, 0); return err }},
		{"lines", "read", func(p string) error { _, err := h.Lines(p, 0); return err }},
		{"tail", "read", func(p string) error { _, err := h.Tail(context.Background(), p, 3); return err }},
		{"grep", "read", func(p string) error { _, err := h.Grep(p, regexp.MustCompile("x"), 0); return err }},
		{"list", "list", func(p string) error { _, err := h.List(p); return err }},
		{"glob", "list", func(p string) error { _, err := h.Glob(p + "/*.log"); return err }},
		{"stat", "stat", func(p string) error { _, err := h.Stat(p); return err }},
		{"disk", "stat", func(p string) error { _, err := h.Disk(p); return err }},
		{"chmod", "chmod", func(p string) error { return h.Chmod(p, 0o755) }},
		{"remove", "delete", func(p string) error { return h.Remove(p) }},
		{"rename-source", "rename", func(p string) error { return h.Rename(p, p+"-moved") }},
		{"exists", "stat", func(p string) error {
			ok, err := h.Exists(p)
			if err == nil && ok {
				return fmt.Errorf("exists(%s) = true", p)
			}
			if err == nil {
				return &hostops.Error{Kind: hostops.KindNotFound} // false: what NOT_FOUND is to the others
			}
			return err
		}},
	}
}

// TestMissingPathUnderPermit: a path that does not exist, where a policy
// permits the directory it would be, is NOT_FOUND (fs.exists: False) for
// every operation that can name it, as `keyhole policy check` predicts;
// where a forbid covers it, as a file or as a directory, it is
// ACCESS_DENIED whether or not it exists, so the answer never tells what
// exists there.
func TestMissingPathUnderPermit(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, root+"/srv")
	h, mem := cedarHost(t, missingPolicy(root))
	cases := []struct {
		name   string
		path   string
		kind   string
		create func() // makes the path exist, for the existence check; nil: none
	}{
		{name: "permitted-dir-itself", path: root + "/later", kind: hostops.KindNotFound},
		{name: "below-permitted-dir", path: root + "/later/a/b.log", kind: hostops.KindNotFound},
		{name: "below-permit-parent-exists", path: root + "/srv/new", kind: hostops.KindNotFound},
		{name: "forbidden-dir-itself", path: root + "/srv/secret", kind: hostops.KindAccessDenied,
			create: func() { mustMkdir(t, root+"/srv/secret") }},
		{name: "below-forbidden-dir", path: root + "/srv/secret/x", kind: hostops.KindAccessDenied},
		{name: "forbidden-file", path: root + "/srv/file-forbid", kind: hostops.KindAccessDenied,
			create: func() { mustWrite(t, root+"/srv/file-forbid", "x", 0o644) }},
		{name: "outside-every-policy", path: root + "/elsewhere", kind: hostops.KindAccessDenied},
	}
	for _, tc := range cases {
		for _, op := range missingOps(h) {
			t.Run(tc.name+"/"+op.name, func(t *testing.T) {
				before := len(mem.Events())
				err := op.op(tc.path)
				if got := errKind(err); got != tc.kind {
					t.Fatalf("%s(%s) = %v, want %s", op.name, tc.path, err, tc.kind)
				}
				ev := mem.Events()[before:]
				if len(ev) == 0 || ev[0].Action != op.action {
					t.Fatalf("audit = %+v, want a %s decision first", ev, op.action)
				}
				wantDecision := "allow"
				if tc.kind == hostops.KindAccessDenied {
					wantDecision = "deny"
				}
				if ev[0].Decision != wantDecision {
					t.Errorf("audit decision = %s, want %s (%+v)", ev[0].Decision, wantDecision, ev[0])
				}
			})
		}
	}
	// Where the answer for a missing path is ACCESS_DENIED, it is the same
	// once the path exists: denials do not depend on existence.
	for _, tc := range cases {
		if tc.create == nil {
			continue
		}
		tc.create()
		for _, op := range missingOps(h) {
			if err := op.op(tc.path); errKind(err) != hostops.KindAccessDenied {
				t.Errorf("%s on existing %s = %v, want ACCESS_DENIED as when missing", op.name, tc.name, err)
			}
		}
	}
}

// TestMissingPathMkdirAndAllowed: mkdir -p builds a permitted directory
// that does not exist yet, and allowed() answers for a missing path what
// the operation decides.
func TestMissingPathMkdirAndAllowed(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, root+"/srv")
	h, mem := cedarHost(t, missingPolicy(root))
	for _, q := range []struct {
		action, path string
		want         bool
	}{
		{"list", root + "/later", true},
		{"stat", root + "/later", true},
		{"read", root + "/later/x", true},
		{"mkdir", root + "/later", true},
		{"list", root + "/srv/secret", false},
		{"stat", root + "/srv/file-forbid", false},
		{"list", root + "/elsewhere", false},
	} {
		got, err := h.Allowed(q.action, q.path)
		if err != nil || got != q.want {
			t.Errorf("allowed(%s, %s) = %v, %v, want %v", q.action, q.path, got, err, q.want)
		}
	}
	before := len(mem.Events())
	if err := h.Mkdir(root+"/later/a/b", true); err != nil {
		t.Fatalf("mkdir -p: %v", err)
	}
	if fi, err := os.Stat(root + "/later/a/b"); err != nil || !fi.IsDir() {
		t.Fatalf("not created: %v", err)
	}
	var got []string
	for _, e := range mem.Events()[before:] {
		got = append(got, e.Action+" "+strings.TrimPrefix(e.Resource, root)+" "+e.Decision)
	}
	want := "mkdir /later/a/b allow|mkdir /later allow|mkdir /later/a allow"
	if strings.Join(got, "|") != want {
		t.Errorf("events = %q, want %q", got, want)
	}
	if entries, err := h.List(root + "/later"); err != nil || len(entries) != 1 {
		t.Errorf("list after mkdir = %v, %v", entries, err)
	}
}

// TestMagicLinkNeverAllowed: a path through a /proc magic link is refused
// by every operation, and where the policy permits the /proc name it is
// still a deny on the audit line, with the reason: the line never says
// allow for something that did not happen.
func TestMagicLinkNeverAllowed(t *testing.T) {
	if !hostops.HaveOpenat2() {
		t.Skip("without openat2, /proc/self/root is followed and the real path authorized")
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, dir+"/f", "data", 0o644)
	h, mem := cedarHost(t, `@id("all") permit (principal, action, resource);`)
	via := "/proc/self/root" + dir
	shown := "/proc/" + strconv.Itoa(os.Getpid()) + "/root" + dir
	ops := []struct {
		name, action, resource string
		op                     func() error
	}{
		{"read", "read", shown + "/f", func() error { _, err := h.Read(via+"/f", 0); return err }},
		{"tail", "read", shown + "/f", func() error { _, err := h.Tail(context.Background(), via+"/f", 1); return err }},
		{"list", "list", shown, func() error { _, err := h.List(via); return err }},
		{"stat", "stat", shown + "/f", func() error { _, err := h.Stat(via + "/f"); return err }},
		{"exists", "stat", shown + "/f", func() error { _, err := h.Exists(via + "/f"); return err }},
		{"chmod", "chmod", shown + "/f", func() error { return h.Chmod(via+"/f", 0o600) }},
		{"write", "create", shown + "/new", func() error { return h.Write(via+"/new", []byte("x"), hostops.KeepMode) }},
		{"remove", "delete", shown + "/f", func() error { return h.Remove(via + "/f") }},
		{"mkdir", "mkdir", shown + "/d", func() error { return h.Mkdir(via+"/d", false) }},
		{"exec", "exec", "/proc/" + strconv.Itoa(os.Getpid()) + "/root/bin/true", func() error {
			_, err := h.Exec(context.Background(), []string{"/proc/self/root/bin/true"}, hostops.ExecOptions{})
			return err
		}},
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			before := len(mem.Events())
			err := tc.op()
			if errKind(err) != hostops.KindInvalidArgument || !strings.Contains(err.Error(), "magic link") {
				t.Fatalf("err = %v, want INVALID_ARGUMENT about a magic link", err)
			}
			ev := mem.Events()[before:]
			if len(ev) != 1 || ev[0].Decision != "deny" || ev[0].Action != tc.action || ev[0].Resource != tc.resource ||
				!strings.Contains(ev[0].Reason, "magic link") || len(ev[0].Policies) != 0 {
				t.Fatalf("audit = %+v, want one deny of %s %s whose reason names the magic link", ev, tc.action, tc.resource)
			}
		})
	}
	if ok, err := h.Allowed("read", via+"/f"); ok || err != nil {
		t.Errorf("allowed(read, %s) = %v, %v, want false", via+"/f", ok, err)
	}
	if data, err := os.ReadFile(dir + "/f"); err != nil || string(data) != "data" {
		t.Errorf("f = %q, %v: changed", data, err)
	}
	if _, err := os.Stat(dir + "/new"); err == nil {
		t.Error("new was written")
	}
}
