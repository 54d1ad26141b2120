package inventory_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/keyhole-dev/keyhole/client/inventory"
)

// writeTree writes files (path → content) under a fresh directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const varsInventory = `[web]
web1 x=host
web2
[web:vars]
x=inv-web
y=inv-web
[all:vars]
y=inv-all
z=inv-all
`

// TestVarsDirs: group_vars and host_vars beside the inventory, with
// Ansible's precedence: inventory group vars < group_vars/all <
// group_vars/GROUP < inventory host vars < host_vars/HOST.
func TestVarsDirs(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"hosts.ini":                 varsInventory,
		"group_vars/all.yml":        "z: gv-all\ny: gv-all\nansible_user: deploy\n",
		"group_vars/web/main.yml":   "y: gv-web\n",
		"group_vars/web/net.yaml":   "ansible_ssh_common_args: -J ops@bastion\n",
		"group_vars/web/notes.txt":  "not: read\n",
		"group_vars/.hidden.yml":    "y: hidden\n",
		"group_vars/unknown.yml":    "y: unknown\n",
		"host_vars/web2.yml":        "x: hv-web2\nports: [1, 2]\n",
		"host_vars/web1":            "$ANSIBLE_VAULT;1.1;AES256\n3338\n",
		"group_vars/web/empty.yml":  "",
		"group_vars/web/z/deep.yml": "deep: yes\n",
	})
	inv := load(t, filepath.Join(dir, "hosts.ini"))
	hs, err := inv.Select("all")
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{"x": "host", "y": "gv-web", "z": "gv-all", "deep": "yes", "ansible_user": "deploy"},
		{"x": "hv-web2", "y": "gv-web", "z": "gv-all", "ports": "[1,2]"},
	}
	for i, h := range hs {
		for k, v := range want[i] {
			if h.Vars[k] != v {
				t.Errorf("%s: %s = %q, want %q", h.Name, k, h.Vars[k], v)
			}
		}
		if h.User != "deploy" || h.Jump != "ops@bastion" {
			t.Errorf("%s: user %q jump %q", h.Name, h.User, h.Jump)
		}
	}
	// Parse reads no files beside anything.
	p, err := inventory.Parse(filepath.Join(dir, "hosts.ini"), []byte(varsInventory))
	if err != nil {
		t.Fatal(err)
	}
	if hs, _ := p.Select("web2"); hs[0].User != "" || hs[0].Vars["y"] != "inv-web" {
		t.Errorf("Parse read group_vars: %+v", hs[0])
	}
}

// TestVarsDirsSymlinkLoop: directories linking to themselves end in an
// error, not an endless or exponential walk.
func TestVarsDirsSymlinkLoop(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"hosts.ini": varsInventory, "group_vars/web/a.yml": "x: 1\n"})
	for _, n := range []string{"l1", "l2", "l3", "l4"} {
		if err := os.Symlink(".", filepath.Join(dir, "group_vars", "web", n)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := inventory.Load(filepath.Join(dir, "hosts.ini"))
	if err == nil || !regexp.MustCompile(`group_vars/web/(l\d/)+.*: (directories nest too deep|more than 10000 files)`).MatchString(err.Error()) {
		t.Errorf("error: %v", err)
	}
}

func TestVarsDirsBad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"yaml-syntax", map[string]string{"group_vars/web.yml": "x: [\n"}, `^inventory: .*/group_vars/web.yml:\d+: did not find expected node content`},
		{"not-a-mapping", map[string]string{"host_vars/web1.yml": "- a\n"}, `^inventory: .*/host_vars/web1.yml:1: variables: want a mapping, got a list$`},
		{"bad-port", map[string]string{"group_vars/all.yml": "ansible_port: ssh\n"}, `^inventory: .*/group_vars/all.yml:1: host web1: ansible_port "ssh" is not a port \(1-65535\)$`},
		{"bad-jump", map[string]string{"group_vars/web/ssh.yml": "# ssh\nansible_ssh_common_args: -o ProxyCommand=\"nc %h %p\"\n"}, `^inventory: .*/group_vars/web/ssh.yml:2: host web1: ansible_ssh_common_args: ProxyCommand "nc …" is not supported`},
		{"duplicate-key", map[string]string{"host_vars/web2": "a: 1\na: 2\n"}, `host_vars/web2:2: variables: duplicate key "a" \(first at line 1\)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.files["hosts.ini"] = varsInventory
			dir := writeTree(t, tc.files)
			_, err := inventory.Load(filepath.Join(dir, "hosts.ini"))
			if err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("error:\n%v\nwant match for\n%s", err, tc.want)
			}
		})
	}
}
