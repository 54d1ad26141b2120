package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// configKeys returns every TOML key of the config struct, limits as
// "limits.<key>".
func configKeys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type.Name() == "limitsConfig" {
				walk(f.Type, prefix+name+".")
				continue
			}
			out = append(out, prefix+name)
		}
	}
	walk(reflect.TypeOf(config{}), "")
	slices.Sort(out)
	return out
}

// tomlBlockKeys returns the keys a TOML snippet sets, tables as prefixes.
func tomlBlockKeys(block string) []string {
	var out []string
	table := ""
	keyRE := regexp.MustCompile(`^([a-z_]+)\s*=`)
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(line, "[] ") + "."
			continue
		}
		if m := keyRE.FindStringSubmatch(line); m != nil {
			out = append(out, table+m[1])
		}
	}
	slices.Sort(out)
	return out
}

// fencedBlocks returns the contents of the ``` blocks of md whose info
// string is lang.
func fencedBlocks(md, lang string) []string {
	var out []string
	var cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !in && line == "```"+lang:
			in, cur = true, nil
		case in && line == "```":
			in = false
			out = append(out, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, line)
		}
	}
	return out
}

// section returns the text of md from the heading line to the next
// heading of the same or a higher level.
func section(t *testing.T, md, heading string) string {
	t.Helper()
	i := strings.Index(md, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("no %q heading", heading)
	}
	rest := md[i+1+len(heading):]
	level := strings.Repeat("#", strings.Count(strings.Fields(heading)[0], "#"))
	re := regexp.MustCompile(`(?m)^#{1,` + strconv.Itoa(len(level)) + `} `)
	if loc := re.FindStringIndex(rest); loc != nil {
		rest = rest[:loc[0]]
	}
	return rest
}

// TestConfigDocsListEveryKey checks that docs/config.md (one heading per
// key), the README's configuration block and the config struct name the
// same keys, and that every example of both decodes.
func TestConfigDocsListEveryKey(t *testing.T) {
	want := configKeys()
	if len(want) < 20 {
		t.Fatalf("config struct has only %d keys: %v", len(want), want)
	}

	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	var docKeys []string
	for _, m := range regexp.MustCompile("(?m)^### `([a-z_.]+)`$").FindAllStringSubmatch(string(doc), -1) {
		docKeys = append(docKeys, m[1])
	}
	slices.Sort(docKeys)
	if !slices.Equal(docKeys, want) {
		t.Errorf("docs/config.md lists keys %v\nthe config struct has %v\nmissing from docs: %v\nnot in the struct: %v",
			docKeys, want, minus(want, docKeys), minus(docKeys, want))
	}

	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := fencedBlocks(section(t, string(readme), "### Configuration"), "toml")
	if len(blocks) == 0 {
		t.Fatal("README's Configuration section has no toml block")
	}
	if got := tomlBlockKeys(blocks[0]); !slices.Equal(got, want) {
		t.Errorf("README's configuration block sets %v\nthe config struct has %v\nmissing from README: %v\nnot in the struct: %v",
			got, want, minus(want, got), minus(got, want))
	}
	if _, err := loadConfig(writeTemp(t, blocks[0])); err != nil {
		t.Errorf("README's configuration block does not load: %v", err)
	}

	// Each example of docs/config.md, with the required keys it does not
	// set itself.
	required := []string{`listen = "127.0.0.1:2222"`, `host_key = "host_key"`, `trusted_user_ca_keys = "ca.pub"`,
		`policy_dir = "policies"`, `audit_log = "audit.jsonl"`}
	examples := fencedBlocks(string(doc), "toml")
	if len(examples) != len(want) {
		t.Errorf("docs/config.md has %d toml examples for %d keys", len(examples), len(want))
	}
	for _, ex := range examples {
		set := tomlBlockKeys(ex)
		var base []string
		for _, r := range required {
			k, _, _ := strings.Cut(r, " ")
			if !slices.Contains(set, k) {
				base = append(base, r)
			}
		}
		text := strings.Join(base, "\n") + "\n" + ex
		if _, err := loadConfig(writeTemp(t, text)); err != nil {
			t.Errorf("example %q does not load: %v", ex, err)
		}
	}
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func writeTemp(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyhole.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
