package inventory

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// varsExts are the names Ansible looks for in group_vars and host_vars:
// NAME (a file, or a directory of files), NAME.yml, NAME.yaml, NAME.json.
var varsExts = []string{"", ".yml", ".yaml", ".json"}

const (
	maxVarsFiles = 10000 // files and directories read from group_vars and host_vars
	maxVarsDepth = 8     // directory levels under group_vars/NAME
)

// loadVarDirs reads group_vars/NAME and host_vars/NAME beside the
// inventory for the groups and hosts it names. Files are YAML (JSON
// included); a vault-encrypted file is skipped.
func (b *builder) loadVarDirs(dir string) error {
	files := 0
	for _, kind := range []string{"group_vars", "host_vars"} {
		root := filepath.Join(dir, kind)
		entries, err := os.ReadDir(root)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return &ParseError{File: root, Msg: err.Error()}
		}
		present := map[string]bool{}
		for _, e := range entries {
			present[e.Name()] = true
		}
		names := b.groupOrder
		if kind == "host_vars" {
			names = b.hostOrder
		}
		out := map[string]map[string]value{}
		for _, name := range names {
			if name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
				continue
			}
			for _, ext := range varsExts {
				if !present[name+ext] {
					continue
				}
				vars, err := b.readVarsPath(filepath.Join(root, name+ext), 0, &files)
				if err != nil {
					return err
				}
				if out[name] == nil {
					out[name] = map[string]value{}
				}
				for k, v := range vars {
					out[name][k] = v
				}
			}
		}
		if kind == "group_vars" {
			b.groupFileVars = out
		} else {
			b.hostFileVars = out
		}
	}
	return nil
}

// readVarsPath reads a variables file, or every file of a directory in
// name order, later files winning.
func (b *builder) readVarsPath(path string, depth int, files *int) (map[string]value, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &ParseError{File: path, Msg: err.Error()}
	}
	if *files++; *files > maxVarsFiles {
		return nil, &ParseError{File: path, Msg: "more than 10000 files and directories in group_vars and host_vars"}
	}
	if !fi.IsDir() {
		return b.readVarsFile(path)
	}
	if depth >= maxVarsDepth {
		return nil, &ParseError{File: path, Msg: "directories nest too deep"}
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, &ParseError{File: path, Msg: err.Error()}
	}
	slices.SortFunc(entries, func(x, y fs.DirEntry) int { return strings.Compare(x.Name(), y.Name()) })
	out := map[string]value{}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !slices.Contains(varsExts, filepath.Ext(n)) && !e.IsDir() {
			continue
		}
		vars, err := b.readVarsPath(filepath.Join(path, n), depth+1, files)
		if err != nil {
			return nil, err
		}
		for k, v := range vars {
			out[k] = v
		}
	}
	return out, nil
}

func (b *builder) readVarsFile(path string) (map[string]value, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, []byte("$ANSIBLE_VAULT;")) {
		return nil, nil // encrypted: its variables are not read
	}
	fb := &builder{file: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fb.yamlError(err)
	}
	w := &yamlWalker{b: fb}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root, err = w.deref(root); err != nil {
		return nil, err
	}
	if isNull(root) {
		return nil, nil
	}
	vars, err := w.vars(root, "variables")
	if err != nil {
		return nil, err
	}
	for k, v := range vars {
		v.file = path
		vars[k] = v
	}
	return vars, nil
}
