package main

import (
	"bufio"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/client"
)

// splitWords splits a shell command line of plain words and single- or
// double-quoted ones, as the examples in docs/client.md are written.
func splitWords(t *testing.T, line string) []string {
	t.Helper()
	var out []string
	var cur strings.Builder
	in := false
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unterminated quote in %q", line)
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// Every keyhole run command of the sh blocks of docs/client.md and the
// README has flags that exist and destinations that parse.
func TestClientDocCommands(t *testing.T) {
	if n := checkRunCommands(t, filepath.Join("..", "..", "docs", "client.md")); n < 8 {
		t.Errorf("found %d keyhole run commands in docs/client.md, want the 8 or more it shows", n)
	}
	if n := checkRunCommands(t, filepath.Join("..", "..", "README.md")); n < 2 {
		t.Errorf("found %d keyhole run commands in README.md, want 2", n)
	}
}

// docInventory writes the example inventory (hosts.ini) and limit file
// (failed.txt) of docs/inventory.md to a directory, which it returns.
func docInventory(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "inventory.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	blocks := strings.Split(string(data), "```")
	for _, want := range []string{"hosts.ini", "failed.txt"} {
		found := false
		for i := 1; i < len(blocks) && !found; i += 2 {
			_, body, _ := strings.Cut(blocks[i], "\n")
			if strings.HasPrefix(body, "# "+want+"\n") {
				found = true
				if err := os.WriteFile(filepath.Join(dir, want), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !found {
			t.Fatalf("docs/inventory.md has no block # %s", want)
		}
	}
	return dir
}

func checkRunCommands(t *testing.T, path string) int {
	t.Helper()
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	inSh := false
	var invDir string
	// listed is what the last --list-hosts line prints, for the text
	// block that follows it.
	var listed string
	var listedLine int
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, "```sh"):
			inSh = true
			continue
		case strings.HasPrefix(text, "```text") && listed != "":
			listedOut := ""
			for sc.Scan() {
				line++
				if strings.HasPrefix(sc.Text(), "```") {
					break
				}
				listedOut += sc.Text() + "\n"
			}
			if listedOut != listed {
				t.Errorf("%s:%d: the block after the --list-hosts line is\n%s\nwant what it prints:\n%s", name, listedLine, listedOut, listed)
			}
			listed = ""
			continue
		case strings.HasPrefix(text, "```"):
			inSh = false
			continue
		}
		if !inSh || !strings.HasPrefix(text, "keyhole run ") {
			continue
		}
		n++
		words := splitWords(t, text)[2:]
		var rf runFlags
		fs := newFlagSet("run", runSynopsis, nil)
		rf.register(fs)
		pos, err := parseInterleaved(fs, words)
		if err != nil {
			t.Errorf("%s:%d: %v", name, line, err)
			continue
		}
		set := false
		fs.Visit(func(fl *flag.Flag) {
			if fl.Name == "e" {
				set = true
			}
		})
		if !set && !rf.listHosts {
			if len(pos) == 0 || !strings.HasSuffix(pos[0], ".star") {
				t.Errorf("%s:%d: no -e and no script file first", name, line)
				continue
			}
			pos = pos[1:]
		}
		if len(pos) == 0 && rf.hosts == "" && rf.inventory == "" {
			t.Errorf("%s:%d: no destination", name, line)
		}
		if rf.inventory != "" {
			if invDir == "" {
				invDir = docInventory(t)
			}
			limit := rf.limit
			if strings.HasPrefix(limit, "@") {
				limit = "@" + filepath.Join(invDir, limit[1:])
			}
			targets, err := targetSource{inventory: filepath.Join(invDir, rf.inventory), limit: limit}.targets("")
			if err != nil {
				t.Errorf("%s:%d: %v", name, line, err)
				continue
			}
			if rf.listHosts {
				var b strings.Builder
				listHosts(&b, targets)
				listed, listedLine = b.String(), line
			}
		}
		for _, d := range pos {
			if _, err := client.ParseTarget(d); err != nil {
				t.Errorf("%s:%d: %v", name, line, err)
			}
		}
		if rf.jump != "" {
			if _, err := client.NewDialer(client.Config{Jump: rf.jump, KnownHosts: []string{"/nonexistent"}}); err != nil && strings.Contains(err.Error(), "jump") {
				t.Errorf("%s:%d: %v", name, line, err)
			}
		}
	}
	return n
}
