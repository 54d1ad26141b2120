package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docsBlocks returns the fenced blocks of lang in the page at path.
func docsBlocks(t *testing.T, path, lang string) []string {
	t.Helper()
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	rest := string(page)
	for {
		_, after, ok := strings.Cut(rest, "```"+lang+"\n")
		if !ok {
			return out
		}
		block, tail, ok := strings.Cut(after, "```\n")
		if !ok {
			t.Fatalf("%s: unterminated %s block", path, lang)
		}
		out = append(out, block)
		rest = tail
	}
}

// The commands of docs/agents.md are run by testdata/agents.txt as
// written, and its MCP configuration starts keyhole mcp with flags that
// parse; the generic command line is the same as the JSON's.
func TestAgentsDoc(t *testing.T) {
	page := filepath.Join("..", "..", "docs", "agents.md")
	script, err := os.ReadFile(filepath.Join("testdata", "agents.txt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range docsBlocks(t, page, "sh") {
		for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
			n++
			if !strings.Contains(string(script), "\nexec "+line+"\n") {
				t.Errorf("docs/agents.md: %q is not run by testdata/agents.txt", line)
			}
		}
	}
	if n < 2 {
		t.Errorf("found %d commands in docs/agents.md, want 2", n)
	}
	blocks := docsBlocks(t, page, "json")
	if len(blocks) != 1 {
		t.Fatalf("%d json blocks in docs/agents.md, want the one mcpServers configuration", len(blocks))
	}
	var cfg struct {
		MCPServers map[string]struct {
			Command string   `json:"command"`
			Args    []string `json:"args"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal([]byte(blocks[0]), &cfg); err != nil {
		t.Fatalf("the mcpServers configuration: %v", err)
	}
	kh, ok := cfg.MCPServers["keyhole"]
	if !ok || kh.Command != "keyhole" || len(kh.Args) == 0 || kh.Args[0] != "mcp" {
		t.Fatalf("the mcpServers configuration: %+v", cfg)
	}
	mf, err := parseMCPFlags(kh.Args[1:], io.Discard)
	if err != nil {
		t.Fatalf("keyhole %s: %v", strings.Join(kh.Args, " "), err)
	}
	if mf.inventory == "" || len(mf.identities) != 1 || len(mf.knownHosts) != 1 || mf.login != "oncall" || !mf.noAgent {
		t.Errorf("the configuration's flags: %+v", mf)
	}
	text, _ := os.ReadFile(page)
	generic := "`keyhole " + strings.Join(kh.Args, " ") + "`"
	if !strings.Contains(strings.ReplaceAll(string(text), "\n", " "), generic) {
		t.Errorf("docs/agents.md does not give the generic command line %s", generic)
	}
}
