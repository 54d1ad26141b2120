package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// maxYAMLWork bounds the nodes walked, aliases counted each time they are
// followed, so that a few anchors cannot stand for an exponential tree.
const maxYAMLWork = 4 * MaxHosts

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML reads Ansible's YAML format: a mapping of groups (usually only
// all), each a mapping with hosts, children and vars.
func (b *builder) parseYAML(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty inventory
		}
		return b.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return b.errorf(extra.Line, "a second YAML document; an inventory is one document")
	} else if !errors.Is(err, io.EOF) {
		return b.yamlError(err)
	}
	w := &yamlWalker{b: b}
	root, err := w.deref(&doc)
	if err != nil {
		return err
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		if root, err = w.deref(root.Content[0]); err != nil {
			return err
		}
	}
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return b.errorf(root.Line, "want a mapping of groups (all: {hosts: …, children: …, vars: …}), got %s", kindName(root))
	}
	return w.mapping(root, "the top level", func(k, v *yaml.Node) error {
		if k.Value == "plugin" {
			return b.errorf(k.Line, "plugin: is an inventory plugin's configuration, which is not run; give an INI or YAML inventory")
		}
		if k.Value == "_meta" {
			return b.errorf(k.Line, "_meta is an inventory script's output, which is not read; give an INI or YAML inventory")
		}
		return w.group(k, v, nil)
	})
}

func (b *builder) yamlError(err error) error {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return b.errorf(n, "%s", m[2])
	}
	return b.errorf(0, "%v", err)
}

type yamlWalker struct {
	b    *builder
	work int
}

func (w *yamlWalker) deref(n *yaml.Node) (*yaml.Node, error) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	w.work++
	if w.work > maxYAMLWork {
		return nil, w.b.errorf(n.Line, "too many nodes (aliases included); more than %d", maxYAMLWork)
	}
	return n, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// mapping calls f for each key and value of n, refusing non-string and
// duplicate keys.
func (w *yamlWalker) mapping(n *yaml.Node, what string, f func(k, v *yaml.Node) error) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := w.deref(n.Content[i])
		if err != nil {
			return err
		}
		v, err := w.deref(n.Content[i+1])
		if err != nil {
			return err
		}
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" || k.Tag == "!!null" {
			return w.b.errorf(k.Line, "%s: want a name as key, got %s", what, kindName(k))
		}
		if first, ok := seen[k.Value]; ok {
			return w.b.errorf(k.Line, "%s: duplicate key %q (first at line %d)", what, k.Value, first)
		}
		seen[k.Value] = k.Line
		if err := f(k, v); err != nil {
			return err
		}
	}
	return nil
}

// group reads one group: its key k and its body v.
func (w *yamlWalker) group(k, v *yaml.Node, parent *group) error {
	b := w.b
	name := k.Value
	if err := checkName(name); err != nil {
		return b.errorf(k.Line, "group %v", err)
	}
	g := b.group(name, k.Line)
	g.defined = true
	if parent != nil {
		if err := b.addChild(parent, g, k.Line); err != nil {
			return err
		}
	}
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		return b.errorf(v.Line, "group %q: want a mapping with hosts, children or vars, got %s", name, kindName(v))
	}
	return w.mapping(v, "group "+strconv.Quote(name), func(k, v *yaml.Node) error {
		if isNull(v) {
			return nil
		}
		if v.Kind == yaml.ScalarNode && (k.Value == "hosts" || k.Value == "children") {
			// As Ansible: a single name stands for a mapping of it.
			v = &yaml.Node{Kind: yaml.MappingNode, Line: v.Line, Content: []*yaml.Node{v, {Kind: yaml.ScalarNode, Tag: "!!null", Line: v.Line}}}
		}
		switch k.Value {
		case "hosts":
			if v.Kind != yaml.MappingNode {
				return b.errorf(v.Line, "group %q: hosts is %s; write a mapping, one host per key (web1: or web1: {ansible_port: 2222})", name, kindName(v))
			}
			return w.mapping(v, "hosts of "+strconv.Quote(name), func(hk, hv *yaml.Node) error {
				return w.host(g, hk, hv)
			})
		case "children":
			if v.Kind != yaml.MappingNode {
				return b.errorf(v.Line, "group %q: children is %s; write a mapping, one group per key", name, kindName(v))
			}
			return w.mapping(v, "children of "+strconv.Quote(name), func(ck, cv *yaml.Node) error {
				if ck.Value == "all" {
					return b.errorf(ck.Line, "group %q cannot have all as a child", name)
				}
				return w.group(ck, cv, g)
			})
		case "vars":
			vars, err := w.vars(v, "vars of group "+strconv.Quote(name))
			if err != nil {
				return err
			}
			for kk, vv := range vars {
				g.vars[kk] = vv
			}
			return nil
		}
		return b.errorf(k.Line, "group %q: unknown key %q; a group has hosts, children and vars (is %q meant to be under children?)", name, k.Value, k.Value)
	})
}

func (w *yamlWalker) host(g *group, k, v *yaml.Node) error {
	b := w.b
	t, err := parseHostToken(k.Value, false)
	if err != nil {
		return b.errorf(k.Line, "%v", err)
	}
	vars := map[string]value{}
	if t.port != 0 {
		vars["ansible_port"] = value{v: strconv.Itoa(t.port), line: k.Line}
	}
	if !isNull(v) {
		if v.Kind != yaml.MappingNode {
			return b.errorf(v.Line, "host %s: want a mapping of variables, got %s", k.Value, kindName(v))
		}
		hv, err := w.vars(v, "host "+k.Value)
		if err != nil {
			return err
		}
		for kk, vv := range hv {
			vars[kk] = vv
		}
	}
	names, err := b.expand(t.pattern, k.Line)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := checkName(name); err != nil {
			return b.errorf(k.Line, "host %v", err)
		}
		if err := b.addHost(name, k.Line, g, vars); err != nil {
			return err
		}
	}
	return nil
}

// vars reads a mapping of variables; a scalar is kept as written, a list
// or mapping becomes JSON.
func (w *yamlWalker) vars(n *yaml.Node, what string) (map[string]value, error) {
	if n.Kind != yaml.MappingNode {
		return nil, w.b.errorf(n.Line, "%s: want a mapping, got %s", what, kindName(n))
	}
	out := map[string]value{}
	err := w.mapping(n, what, func(k, v *yaml.Node) error {
		switch {
		case isNull(v):
			out[k.Value] = value{v: "", line: k.Line}
		case v.Kind == yaml.ScalarNode:
			out[k.Value] = value{v: v.Value, line: k.Line}
		default:
			w.work += len(v.Content)
			if w.work > maxYAMLWork {
				return w.b.errorf(v.Line, "too many nodes (aliases included); more than %d", maxYAMLWork)
			}
			var x any
			if err := v.Decode(&x); err != nil {
				return w.b.errorf(v.Line, "%s: variable %s: %v", what, k.Value, err)
			}
			j, err := json.Marshal(x)
			if err != nil {
				return w.b.errorf(v.Line, "%s: variable %s cannot be written as JSON: %v", what, k.Value, err)
			}
			out[k.Value] = value{v: string(j), line: k.Line}
		}
		return nil
	})
	return out, err
}
