package authz_test

import (
	"path"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/authz"
)

// oddPaths are paths a buggy caller might pass. Decide must not panic on
// any of them and must deny all but the clean absolute ones.
var oddPaths = []struct {
	name string
	path string
	ok   bool // absolute and clean: evaluated by policy
}{
	{"root", "/", true},
	{"top-level", "/etc", true},
	{"deep", "/a/b/c/d/e/f/g/h", true},
	{"spaces-and-quotes", `/var/log/a "b"\c`, true},
	{"non-utf8", "/var/\xff\xfe", true},
	{"empty", "", false},
	{"relative", "var/log", false},
	{"dot", ".", false},
	{"trailing-slash", "/var/log/", false},
	{"double-slash-root", "//", false},
	{"double-slash-inside", "/var//log", false},
	{"dot-segment", "/var/./log", false},
	{"dot-dot-segment", "/var/log/../../etc", false},
	{"dot-dot-above-root", "/..", false},
	{"nul-byte", "/var/log\x00/x", false},
}

func TestDecideOddPaths(t *testing.T) {
	t.Parallel()
	ps := mustLoad(t,
		`@id("all") permit (principal, action, resource);`,
		`@id("in-root") permit (principal, action, resource in Keyhole::Dir::"/");`,
		`@id("no-var") forbid (principal, action, resource in Keyhole::Dir::"/var/log");`,
	)
	kinds := []struct {
		kind, action string
	}{
		{authz.KindFile, "read"},
		{authz.KindDir, "list"},
		{authz.KindCommand, "exec"},
	}
	for _, k := range kinds {
		for _, tt := range oddPaths {
			t.Run(strings.ToLower(k.kind)+"-"+tt.name, func(t *testing.T) {
				t.Parallel()
				req := readReq(tt.path)
				req.Action = k.action
				req.Resource = authz.Resource{Kind: k.kind, Path: tt.path}
				d := ps.Decide(req)
				if !tt.ok {
					if d.Allow || len(d.Policies) != 0 || len(d.Errors) != 1 || !strings.Contains(d.Errors[0].Message, "not absolute and clean") {
						t.Errorf("Decide(%q) = %+v, want a malformed-request deny", tt.path, d)
					}
					return
				}
				if len(d.Errors) != 0 {
					t.Errorf("Decide(%q) errors: %q", tt.path, d.Errors)
				}
				if want := k.kind == authz.KindCommand || !strings.HasPrefix(tt.path, "/var/log"); d.Allow != want {
					t.Errorf("Decide(%q) = %+v, want allow %v", tt.path, d, want)
				}
			})
		}
	}
}

// FuzzDecide checks that no path panics Decide, that paths which are not
// absolute and clean are denied, and that `in Dir` agrees with a string
// computation of ancestry.
func FuzzDecide(f *testing.F) {
	for _, p := range oddPaths {
		f.Add(p.path, false)
		f.Add(p.path, true)
	}
	f.Add("/var/log/app", true)
	f.Add("/var/log/application/x", false)
	ps := mustLoad(f, `@id("app") permit (principal, action, resource in Keyhole::Dir::"/var/log/app");`)
	f.Fuzz(func(t *testing.T, p string, dir bool) {
		req := readReq(p)
		if dir {
			req.Action, req.Resource = "list", authz.Resource{Kind: authz.KindDir, Path: p}
		}
		d := ps.Decide(req)
		clean := strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.Contains(p, "\x00")
		want := clean && (p == "/var/log/app" && dir || strings.HasPrefix(p, "/var/log/app/"))
		if d.Allow != want {
			t.Errorf("Decide(%q, dir=%v) = %+v, want allow %v", p, dir, d, want)
		}
		if !clean && len(d.Errors) != 1 {
			t.Errorf("Decide(%q) errors = %q, want one", p, d.Errors)
		}
	})
}
