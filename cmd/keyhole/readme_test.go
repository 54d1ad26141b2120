package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// TestReadmeWalkthrough checks that testdata/readme_walkthrough.txt (which
// TestScripts runs) replays README's "Run a server": every line of a block
// marked <!-- run --> appears in the script (quotes and runs of spaces
// aside, the README's port 2222 as $PORT, a trailing " &" as a background
// command), and every block marked <!-- file: NAME --> is a file of the
// script with the same content. It also checks the Go version the README
// names against go.mod.
func TestReadmeWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := section(t, string(readme), "## Run a server")
	runs, fileBlocks := checkReplayed(t, text, "testdata/readme_walkthrough.txt", func(s string) string {
		return strings.ReplaceAll(s, "2222", "$PORT")
	})
	if runs < 8 || fileBlocks < 3 {
		t.Fatalf("README's walkthrough has %d commands and %d files: the markers are missing", runs, fileBlocks)
	}

	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "Go " + string(m[1]) + " or later"; !strings.Contains(text, want) {
		t.Errorf("README's Run a server does not say %q (go.mod: go %s)", want, m[1])
	}
}

// sshConfigFlag is the -F FILE a script gives ssh so that the machine's
// ~/.ssh/config plays no part; the documents leave it out.
var sshConfigFlag = regexp.MustCompile(`\s-F\s+\S+`)

// normCommand drops quotes and collapses white space, so a command quoted
// for sh -c in a script matches the README's.
func normCommand(s string) string {
	s = strings.NewReplacer(`'`, "", `"`, "").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// checkReplayed checks that the script at scriptPath replays the marked
// blocks of text: every line of a block marked <!-- run --> appears in the
// script (quotes and runs of spaces aside, after subst, a trailing " &" as
// a background command), and every block marked <!-- file: NAME --> is a
// file of the script with the same content. It returns how many commands
// and files it checked.
func checkReplayed(t *testing.T, text, scriptPath string, subst func(string) string) (runs, fileBlocks int) {
	t.Helper()
	ar, err := txtar.ParseFile(scriptPath)
	if err != nil {
		t.Fatal(err)
	}
	var script []string
	for _, line := range strings.Split(string(ar.Comment), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			script = append(script, normCommand(sshConfigFlag.ReplaceAllString(l, "")))
		}
	}
	files := map[string]string{}
	for _, f := range ar.Files {
		files[f.Name] = string(f.Data)
	}
	marker := regexp.MustCompile(`^<!-- (run|file: (\S+)) -->$`)
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		m := marker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("line %q is not followed by a code block", lines[i])
		}
		var block []string
		for i += 2; i < len(lines) && lines[i] != "```"; i++ {
			block = append(block, lines[i])
		}
		if m[2] != "" {
			fileBlocks++
			want := strings.Join(block, "\n") + "\n"
			got, ok := "", false
			for name, data := range files {
				if name == m[2] || strings.HasSuffix(name, "/"+m[2]) {
					got, ok = data, true
				}
			}
			if !ok {
				t.Errorf("file %s is not in %s", m[2], scriptPath)
			} else if got != want {
				t.Errorf("file %s differs from %s's:\ndoc:\n%s\nscript:\n%s", m[2], scriptPath, want, got)
			}
			continue
		}
		for _, cmd := range block {
			if cmd = strings.TrimSpace(cmd); cmd == "" || strings.HasPrefix(cmd, "#") {
				continue
			}
			runs++
			want := normCommand(subst(strings.TrimSuffix(cmd, " &")))
			found := false
			for _, s := range script {
				if strings.Contains(s, want) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("command %q is not replayed by %s", cmd, scriptPath)
			}
		}
	}
	return runs, fileBlocks
}

// TestDeployLayout checks that testdata/deploy_layout.txt (which
// TestScripts runs) replays docs/deploy.md's layout commands and file, with
// the scratch root $ROOT for /.
func TestDeployLayout(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	text := section(t, string(doc), "## The `/etc/keyhole` layout")
	root := strings.NewReplacer("/usr/local/bin/", "$ROOT/usr/local/bin/", "/etc/keyhole", "$ROOT/etc/keyhole", "/var/log/keyhole", "$ROOT/var/log/keyhole")
	runs, files := checkReplayed(t, text, "testdata/deploy_layout.txt", root.Replace)
	if runs < 8 || files < 1 {
		t.Fatalf("docs/deploy.md's layout has %d commands and %d files: the markers are missing", runs, files)
	}
}

// TestCookbook checks that testdata/cookbook.txt (which TestScripts runs)
// holds every policy and script of docs/cookbook.md and runs every keyhole
// command of it.
func TestCookbook(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cookbook.md")
	if err != nil {
		t.Fatal(err)
	}
	runs, files := checkReplayed(t, string(doc), "testdata/cookbook.txt", func(s string) string { return s })
	if runs < 8 || files < 7 {
		t.Fatalf("docs/cookbook.md has %d commands and %d files: the markers are missing", runs, files)
	}
}
