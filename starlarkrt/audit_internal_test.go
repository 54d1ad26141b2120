package starlarkrt

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyhole-dev/keyhole/audit"
)

// TestAuditFailureEndsScript checks that an operation whose audit line
// cannot be written ends the script INTERNAL (exit 125), that catch does
// not catch it, and that nothing after it runs.
func TestAuditFailureEndsScript(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := map[string][]byte{"p.cedar": []byte(`@id("dir") permit (principal, action in [Keyhole::Action::"read",
		Keyhole::Action::"write", Keyhole::Action::"create"], resource in Keyhole::Dir::"` + dir + `");`)}
	fail := audit.SinkFunc(func(audit.Event) error { return errors.New("no space left on device") })
	tests := []struct {
		name, script, msg string
	}{
		{"read", `print(fs.read(p + "/a.txt"))`, "audit log unwritable, read " + dir + "/a.txt not performed"},
		{"caught-read", `v, err = catch(fs.read, p + "/a.txt")
print("caught", v, err)`, "audit log unwritable, read " + dir + "/a.txt not performed"},
		{"caught-write", `catch(fs.write, p + "/b.txt", "x")
print("after")`, "audit log unwritable, create " + dir + "/b.txt not performed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			res := Run(context.Background(), "script", "p = "+quote(dir)+"\n"+tc.script, Options{
				Host: realHost(t, policy, fail), Stdout: &out,
			})
			if res.Exit != ExitInternal || res.Err == nil || res.Err.Kind != KindInternal || res.Err.Message != tc.msg {
				t.Fatalf("result = %d %+v, want 125 INTERNAL %q", res.Exit, res.Err, tc.msg)
			}
			if out.Len() > 0 {
				t.Errorf("script went on: %q", out.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "b.txt")); !os.IsNotExist(err) {
				t.Errorf("b.txt: %v", err)
			}
		})
	}
}

func quote(s string) string { return `"` + s + `"` }
