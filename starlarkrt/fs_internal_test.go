package starlarkrt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
)

// realHostScripts are the testdata scripts that run against a real
// hostops.Host on a sandbox with Cedar policies (TestFSScript), not the
// fake host of TestScripts.
var realHostScripts = map[string]bool{"fs.star": true}

// fsSandbox is a directory tree for fs.star, under root:
//
//	allowed/a.txt "alpha\n", b.txt "bravo bravo\n", log.txt (5 lines),
//	allowed/sub/c.txt, allowed/link-a -> a.txt, allowed/link-secret -> ../denied/secret,
//	allowed/fifo, allowed/hard -> hard link of denied/hardsecret
//	readonly/r.txt "read only\n"
//	denied/secret "s3cret\n", denied/hardsecret, denied/sub/
//
// Policies: role ops may read, list and stat anything under root, change
// anything under allowed, and nothing at all under denied.
func fsSandbox(t testing.TB) (root string, files map[string][]byte) {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"allowed/sub", "readonly", "denied/sub"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{
		"allowed/a.txt":     "alpha\n",
		"allowed/b.txt":     "bravo bravo\n",
		"allowed/log.txt":   "one\ntwo ERROR x\nthree\nfour ERROR y\nfive\n",
		"allowed/sub/c.txt": "charlie",
		"readonly/r.txt":    "read only\n",
		"denied/secret":     "s3cret\n",
		"denied/hardsecret": "hard secret\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Symlink("a.txt", filepath.Join(root, "allowed/link-a")))
	must(t, os.Symlink("../denied/secret", filepath.Join(root, "allowed/link-secret")))
	must(t, os.Link(filepath.Join(root, "denied/hardsecret"), filepath.Join(root, "allowed/hard")))
	must(t, mkfifo(filepath.Join(root, "allowed/fifo")))
	policy := fmt.Sprintf(`
@id("sandbox-read")
permit (principal in Keyhole::Role::"ops",
        action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::%[1]q);
@id("sandbox-write")
permit (principal in Keyhole::Role::"ops",
        action in [Keyhole::Action::"write", Keyhole::Action::"create", Keyhole::Action::"delete",
                   Keyhole::Action::"mkdir", Keyhole::Action::"rename", Keyhole::Action::"chmod"],
        resource in Keyhole::Dir::%[2]q);
@id("no-denied")
forbid (principal, action, resource in Keyhole::Dir::%[3]q);
`, root, root+"/allowed", root+"/denied")
	return root, map[string][]byte{"sandbox.cedar": []byte(policy)}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// realHost returns a Host for agent-7 in role ops under the policies files
// (plus extra ones), auditing to sink.
func realHost(t testing.TB, files map[string][]byte, sink audit.Sink) *hostops.Host {
	t.Helper()
	ps, err := authz.LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	return &hostops.Host{
		Policy:    ps,
		Principal: authz.Principal{UserID: "agent-7", Role: "ops", Principals: []string{"ops"}, Auth: "certificate"},
		Context:   authz.Context{SessionID: "s-1", Transport: "script"},
		Audit:     sink,
		Event:     audit.Event{Session: "s-1", User: "agent-7", Role: "ops", Transport: "script"},
	}
}

// treeOf describes every entry under dir: type, mode and contents or
// link target.
func treeOf(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(data))
		case fi.Mode()&fs.ModeSymlink != 0:
			to, _ := os.Readlink(p)
			desc += " -> " + to
		}
		out[strings.TrimPrefix(p, dir)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// auditedBuiltin returns the decision events logged since its last call
// as (action, resource, decision) tuples, with resource relative to root.
func auditedBuiltin(mem *audit.Memory, root string) *starlark.Builtin {
	seen := 0
	return starlark.NewBuiltin("audited", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		evs := mem.Events()
		var out []starlark.Value
		for _, e := range evs[seen:] {
			out = append(out, starlark.Tuple{starlark.String(e.Action), starlark.String(strings.TrimPrefix(e.Resource, root)), starlark.String(e.Decision)})
		}
		seen = len(evs)
		return starlark.NewList(out), nil
	})
}

// TestFSScript runs testdata/fs.star against a real Host on a sandbox with
// real Cedar policies. Afterwards the denied tree is as it was, and no
// decision allowed anything under it.
func TestFSScript(t *testing.T) {
	root, files := fsSandbox(t)
	mem := &audit.Memory{}
	h := realHost(t, files, mem)
	h.MaxWriteBytes = 1 << 20
	denied := filepath.Join(root, "denied")
	before := treeOf(t, denied)
	src, err := os.ReadFile("testdata/fs.star")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	assert, opts := assertModule(t, Options{Host: h, Stdout: &out})
	res := run1(context.Background(), "testdata/fs.star", string(src), opts,
		starlark.StringDict{"assert": assert, "root": starlark.String(root), "audited": auditedBuiltin(mem, root)})
	if res.Exit != 0 {
		t.Fatalf("exit %d: %v\noutput:\n%s", res.Exit, res.Err, out.String())
	}
	after := treeOf(t, denied)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("denied tree changed:\nbefore %v\nafter  %v", before, after)
	}
	for _, e := range mem.Events() {
		if e.Decision == "allow" && (e.Resource == denied || strings.HasPrefix(e.Resource, denied+"/")) {
			t.Errorf("allowed %s %s", e.Action, e.Resource)
		}
	}
	if n := len(mem.Events()); n < 50 {
		t.Errorf("only %d decision events", n)
	}
}

// fsCoverage returns the fs builtins that testdata/fs.star does not call
// both in an allowed case and in a denied one. A denied case is a line
// that calls fs.NAME( (or passes fs.NAME to catch) and names
// ACCESS_DENIED; an allowed case is a line that calls fs.NAME( and
// expects no error (no ACCESS_DENIED, fails( or catch( on the line).
func fsCoverage(names []string, script string) (missing []string) {
	for _, name := range names {
		call := regexp.MustCompile(`\bfs\.` + name + `\(|catch\(fs\.` + name + `\b`)
		var allowed, denied bool
		for _, line := range strings.Split(script, "\n") {
			if i := strings.Index(line, "#"); i >= 0 && !strings.Contains(line[:i], `"`) {
				line = line[:i]
			}
			if !call.MatchString(line) {
				continue
			}
			switch {
			case strings.Contains(line, "ACCESS_DENIED"):
				denied = true
			case !strings.Contains(line, "fails(") && !strings.Contains(line, "catch("):
				allowed = true
			}
		}
		if !allowed {
			missing = append(missing, name+" (no allowed case)")
		}
		if !denied {
			missing = append(missing, name+" (no denied case)")
		}
	}
	return missing
}

// TestFSScriptCoversEveryBuiltin fails when a builtin of the fs module has
// no allowed or no denied case in testdata/fs.star. The builtins are
// listed from the module itself.
func TestFSScriptCoversEveryBuiltin(t *testing.T) {
	var names []string
	for name := range fsModule(&run{}).Members {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) < 15 {
		t.Fatalf("fs module has %d builtins: %v", len(names), names)
	}
	src, err := os.ReadFile("testdata/fs.star")
	if err != nil {
		t.Fatal(err)
	}
	if missing := fsCoverage(names, string(src)); len(missing) > 0 {
		t.Errorf("testdata/fs.star lacks cases: %s", strings.Join(missing, ", "))
	}
}

// TestFSCoverageCheck shows the coverage check can fail.
func TestFSCoverageCheck(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		missing int
	}{
		{"both", "fs.read(p)\nassert.fails(lambda: fs.read(d), \"ACCESS_DENIED\")", 0},
		{"catch-denied", "x = fs.read(p)\nv, e = catch(fs.read, d); assert.eq(e.kind, \"ACCESS_DENIED\")", 0},
		{"no-denied", "fs.read(p)", 1},
		{"no-allowed", "assert.fails(lambda: fs.read(d), \"ACCESS_DENIED\")", 1},
		{"only-other-errors", "assert.fails(lambda: fs.read(d), \"NOT_FOUND\")", 2},
		{"commented-out", "# fs.read(p)\n# fs.read(d) ACCESS_DENIED", 2},
		{"other-builtin", "fs.readx(p) ACCESS_DENIED\nfs.readx(p)", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fsCoverage([]string{"read"}, tc.script); len(got) != tc.missing {
				t.Errorf("missing = %v, want %d", got, tc.missing)
			}
		})
	}
}
