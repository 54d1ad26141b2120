package authz_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go/x/exp/schema"

	"github.com/keyhole-dev/keyhole/authz"
)

func TestSchema(t *testing.T) {
	t.Parallel()
	text := authz.Schema()
	if !strings.HasPrefix(text, "namespace Keyhole {") {
		t.Fatalf("Schema() starts %q", text[:min(len(text), 40)])
	}
	var s schema.Schema
	if err := s.UnmarshalCedar([]byte(text)); err != nil {
		t.Fatalf("parse schema: %v", err)
	}
	if _, err := s.Resolve(); err != nil {
		t.Fatalf("resolve schema: %v", err)
	}
}

func TestLoadFilesRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string][]byte
		want  []string // regexps, each must match one line of the error
	}{
		{name: "unknown-action", files: map[string][]byte{"policies/a.cedar": []byte(`// logs
@id("logs-read")
permit (principal, action == Keyhole::Action::"raed", resource);`)},
			want: []string{`^authz: policies/a\.cedar:2: policy "logs-read": unrecognized action .*"raed"`}},
		{name: "unknown-attribute", files: files(`@id("x") permit (principal, action, resource is Keyhole::File) when { resource.owner == "root" };`),
			want: []string{`^authz: 00\.cedar:1: policy "x": attribute .owner. on entity type .Keyhole::File. not found$`}},
		{name: "unknown-context-attribute", files: files(`@id("x") permit (principal, action == Keyhole::Action::"read", resource) when { context.argv == "x" };`),
			want: []string{`^authz: 00\.cedar:1: policy "x": attribute .argv. in context .* not found$`}},
		{name: "wrong-entity-type", files: files(`@id("x") permit (principal, action == Keyhole::Action::"read", resource in Keyhole::Command::"/bin/ls");`),
			want: []string{`^authz: 00\.cedar:1: policy "x": unable to find an applicable action`}},
		{name: "unknown-entity-type", files: files(`@id("x") permit (principal in Keyhole::Group::"ops", action, resource);`),
			want: []string{`^authz: 00\.cedar:1: policy "x": .*Keyhole::Group`}},
		{name: "type-error", files: files(`@id("x") permit (principal, action, resource) when { principal.serial == "42" };`),
			want: []string{`^authz: 00\.cedar:1: policy "x": `}},
		{name: "unguarded-optional-attribute", files: files(`@id("x") permit (principal, action, resource is Keyhole::File) when { resource.size > 10 };`),
			want: []string{`^authz: 00\.cedar:1: policy "x": unable to guarantee safety of access to optional attribute .size.`}},
		{name: "unclean-dir-path", files: files(`@id("no-etc") forbid (principal, action, resource in Keyhole::Dir::"/etc/");`),
			want: []string{`^authz: 00\.cedar:1: policy "no-etc": Keyhole::Dir::"/etc/" names a path that is not absolute and clean, so it matches nothing$`}},
		{name: "relative-command-in-condition", files: files(`@id("ls") permit (principal, action == Keyhole::Action::"exec", resource) when { resource == Keyhole::Command::"ls" };`),
			want: []string{`^authz: 00\.cedar:1: policy "ls": Keyhole::Command::"ls" names a path`}},
		{name: "unclean-file-in-set", files: files(`@id("f") permit (principal, action, resource) when { [Keyhole::File::"/a//b"].contains(resource) };`),
			want: []string{`^authz: 00\.cedar:1: policy "f": Keyhole::File::"/a//b" names a path`}},
		{name: "missing-id", files: files("@id(\"a\") permit (principal, action, resource);\n\npermit (principal, action, resource);"),
			want: []string{`^authz: 00\.cedar:3: policy has no @id annotation$`}},
		{name: "empty-id", files: files(`@id("") permit (principal, action, resource);`),
			want: []string{`^authz: 00\.cedar:1: policy has an empty @id$`}},
		{name: "control-character-id", files: files(`@id("a\nb") permit (principal, action, resource);`),
			want: []string{`^authz: 00\.cedar:1: policy @id "a\\nb" holds control characters$`}},
		{name: "duplicate-id-across-files", files: files(
			`@id("dup") permit (principal, action, resource);`,
			"\n@id(\"dup\") forbid (principal, action, resource);"),
			want: []string{`^authz: 01\.cedar:2: policy "dup": duplicate @id, first defined at 00\.cedar:1$`}},
		{name: "duplicate-id-annotation", files: files(`@id("a") @id("b") permit (principal, action, resource);`),
			want: []string{`^authz: 00\.cedar:1:\d+: syntax error near "\(": duplicate annotation: @id$`}},
		{name: "syntax-error", files: files("@id(\"x\")\npermit (principal, action, resource) when { 1 + };"),
			want: []string{`^authz: 00\.cedar:2:50: syntax error near ";": invalid primary$`}},
		{name: "unterminated-string", files: files("@id(\"x\")\npermit (principal, action, resource) when { \"abc };"),
			want: []string{`^authz: 00\.cedar:2:45: syntax error: literal not terminated$`}},
		{name: "every-problem-reported", files: files(
			"@id(\"x\")\npermit (principal, action, resource) when { 1 + };",
			`@id("y") permit (principal, action == Keyhole::Action::"raed", resource);`,
			`permit (principal, action, resource);`),
			want: []string{
				`^authz: 00\.cedar:2:50: syntax error`,
				`^authz: 01\.cedar:1: policy "y": unrecognized action`,
				`^authz: 02\.cedar:1: policy has no @id annotation$`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ps, err := authz.LoadFiles(tt.files)
			if err == nil {
				t.Fatalf("LoadFiles succeeded with %d policies, want error", ps.Len())
			}
			if ps != nil {
				t.Errorf("LoadFiles returned a set with its error")
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				re := regexp.MustCompile(w)
				if !slices.ContainsFunc(lines, re.MatchString) {
					t.Errorf("no error line matches %s; got:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadFiles(t *testing.T) {
	t.Parallel()
	ps, err := authz.LoadFiles(map[string][]byte{
		"b.cedar": []byte("@id(\"b1\") permit (principal, action, resource);\n@id(\"b2\") forbid (principal, action, resource) when { false };"),
		"a.cedar": []byte(`@id("a1") permit (principal, action, resource);`),
		"c.cedar": []byte("// only a comment\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ps.IDs(), []string{"a1", "b1", "b2"}; !slices.Equal(got, want) {
		t.Errorf("IDs = %q, want %q", got, want)
	}
	if ps.Len() != 3 {
		t.Errorf("Len = %d, want 3", ps.Len())
	}
	ids := ps.IDs()
	ids[0] = "changed"
	if ps.IDs()[0] != "a1" {
		t.Errorf("IDs shares its slice with the set")
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	base := map[string][]byte{"a.cedar": []byte(logsRead), "b.cedar": []byte(noEtc)}
	version := func(t *testing.T, m map[string][]byte) string {
		t.Helper()
		ps, err := authz.LoadFiles(m)
		if err != nil {
			t.Fatal(err)
		}
		return ps.Version()
	}
	v := version(t, base)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(v) {
		t.Fatalf("Version = %q", v)
	}
	tests := []struct {
		name  string
		files map[string][]byte
		same  bool
	}{
		{name: "same-content-same-version", same: true,
			files: map[string][]byte{"b.cedar": []byte(noEtc), "a.cedar": []byte(logsRead)}},
		{name: "content-change", files: map[string][]byte{"a.cedar": []byte(logsRead + "\n"), "b.cedar": []byte(noEtc)}},
		{name: "rename", files: map[string][]byte{"a.cedar": []byte(logsRead), "c.cedar": []byte(noEtc)}},
		{name: "swap-contents", files: map[string][]byte{"a.cedar": []byte(noEtc), "b.cedar": []byte(logsRead)}},
		{name: "boundary-shift", files: map[string][]byte{"a.cedar": []byte(logsRead + "\n//b.cedar"), "": []byte(noEtc)}},
		{name: "empty-set", files: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := version(t, tt.files); (got == v) != tt.same {
				t.Errorf("Version = %q, base %q, want same=%v", got, v, tt.same)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("10-logs.cedar", logsRead)
	write("20-etc.cedar", noEtc)
	write("README.md", "not a policy")
	write("30-old.cedar.bak", "not a policy either {")
	write(".#10-logs.cedar", "editor lock file")
	if err := os.Mkdir(filepath.Join(dir, "sub.cedar"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub.cedar", "x.cedar"), []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}

	ps, err := authz.Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := ps.IDs(), []string{"logs-read", "no-etc"}; !slices.Equal(got, want) {
		t.Errorf("IDs = %q, want %q", got, want)
	}
	// The version is of names and contents, not of where the directory is.
	same := mustLoadFiles(t, map[string][]byte{"10-logs.cedar": []byte(logsRead), "20-etc.cedar": []byte(noEtc)})
	if ps.Version() != same.Version() {
		t.Errorf("Load version %q != LoadFiles version %q", ps.Version(), same.Version())
	}
	if d := ps.Decide(readReq("/var/log/app/a.log")); !d.Allow {
		t.Errorf("Decide = %+v, want allow", d)
	}

	write("15-bad.cedar", `@id("bad") permit (principal, action == Keyhole::Action::"raed", resource);`)
	_, err = authz.Load(dir)
	if err == nil || !strings.Contains(err.Error(), "authz: "+filepath.Join(dir, "15-bad.cedar")+":1: policy \"bad\"") {
		t.Errorf("Load with a bad file: %v", err)
	}
}

func TestLoadEmptyDir(t *testing.T) {
	t.Parallel()
	ps, err := authz.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if ps.Len() != 0 {
		t.Errorf("Len = %d", ps.Len())
	}
	if d := ps.Decide(readReq("/var/log/app/a.log")); d.Allow || len(d.Policies) != 0 || len(d.Errors) != 0 {
		t.Errorf("Decide = %+v, want default deny", d)
	}
}

func TestLoadMissingDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := authz.Load(dir)
	if err == nil || !strings.HasPrefix(err.Error(), "authz: read policy dir: ") || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Load(%q) = %v, want a not-exist error", dir, err)
	}
}

func mustLoadFiles(t *testing.T, m map[string][]byte) *authz.PolicySet {
	t.Helper()
	ps, err := authz.LoadFiles(m)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// unwrapAll returns the innermost error of a chain of single wraps.
func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}
