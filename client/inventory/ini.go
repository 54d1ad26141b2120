package inventory

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// sectionRE is a section header as Ansible reads it: [name] or
// [name:type], optionally followed by a comment.
var sectionRE = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$`)

// childRE is a line of a [g:children] section.
var childRE = regexp.MustCompile(`^([^:\]\s]+)\s*(?:[#;].*)?$`)

type iniState int

const (
	stHosts iniState = iota
	stChildren
	stVars
)

// parseINI reads Ansible's INI format. Hosts before any section are in
// the implicit group ungrouped. A plain list is the same format without
// sections or variables; its hosts are named as written, port included,
// and may carry user@.
func (b *builder) parseINI(data []byte, plain bool) error {
	g := b.groups["ungrouped"]
	state := stHosts
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' && !plain {
			if m := sectionRE.FindStringSubmatch(line); m != nil {
				name, kind := m[1], m[2]
				if err := checkName(name); err != nil {
					return b.errorf(n, "group %v", err)
				}
				switch kind {
				case "", "hosts":
					state = stHosts
				case "children":
					state = stChildren
				case "vars":
					state = stVars
				default:
					return b.errorf(n, "section [%s:%s] has unknown type %q; the types are [%s], [%s:children] and [%s:vars]", name, kind, kind, name, name, name)
				}
				g = b.group(name, n)
				if state != stVars {
					g.defined = true
				}
				continue
			}
			if !isHostLine(line) {
				return b.errorf(n, "%s", badSection(line))
			}
		}
		var err error
		switch state {
		case stHosts:
			err = b.iniHostLine(g, line, n, plain)
		case stChildren:
			m := childRE.FindStringSubmatch(line)
			if m == nil {
				return b.errorf(n, "[%s:children]: want one group name per line, got %q", g.name, line)
			}
			if err := checkName(m[1]); err != nil {
				return b.errorf(n, "group %v", err)
			}
			err = b.addChild(g, b.group(m[1], n), n)
		case stVars:
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return b.errorf(n, "[%s:vars]: want key=value, got %q", g.name, line)
			}
			g.vars[k] = value{v: varsValue(strings.TrimSpace(v)), line: n}
		}
		if err != nil {
			return err
		}
	}
	// As in Ansible, [g] or [g:children] declares a group, before or
	// after it is used; [g:vars] and a [p:children] line do not.
	for _, name := range b.groupOrder {
		g := b.groups[name]
		if g.defined {
			continue
		}
		if len(g.parents) > 0 {
			p := b.groups[g.parents[0]]
			return b.errorf(p.childAt[name], "section [%s:children] names group %q, which is never declared; add a [%s] section (it may be empty)", p.name, name, name)
		}
		return b.errorf(g.line, "section [%s:vars] is for group %q, which is never declared; add a [%s] or [%s:children] section", name, name, name, name)
	}
	return nil
}

// isHostLine reports whether a line starting with '[' is a host rather
// than a section: [::1]:2222, or a range at the start of a name.
func isHostLine(line string) bool {
	tok := strings.Fields(line)[0]
	if i := strings.IndexByte(tok, ']'); i > 0 && isIPv6(tok[1:i]) {
		return true
	}
	return strings.Contains(tok, "]") && !strings.HasSuffix(tok, "]")
}

// badSection explains a line that starts like a section but is not one.
func badSection(line string) string {
	switch {
	case !strings.Contains(line, "]"):
		return fmt.Sprintf("unterminated section header %q: missing ']'", line)
	case strings.HasPrefix(line, "[]"):
		return fmt.Sprintf("section header %q has no group name", line)
	case strings.ContainsAny(strings.TrimSpace(line[1:strings.IndexByte(line, ']')]), " \t"):
		return fmt.Sprintf("section header %q: a group name has no spaces", line)
	}
	return fmt.Sprintf("bad section header %q: want [group], [group:children] or [group:vars]", line)
}

// iniHostLine reads "host[:port] [key=value …]", where host may hold
// ranges; values may be quoted as in a POSIX shell.
func (b *builder) iniHostLine(g *group, line string, n int, plain bool) error {
	toks, err := shellSplit(line, true)
	if err != nil {
		// The line is not shown: it may hold a password.
		return b.errorf(n, "%v", err)
	}
	if len(toks) == 0 {
		return nil // only a comment
	}
	if toks[0] == "---" {
		return b.errorf(n, "a line \"---\" starts a YAML document; name a YAML inventory .yml or begin it with its top group (all:)")
	}
	t, err := parseHostToken(toks[0], plain)
	if err != nil {
		return b.errorf(n, "%v", err)
	}
	vars := map[string]value{}
	if t.port != 0 {
		vars["ansible_port"] = value{v: fmt.Sprint(t.port), line: n}
	}
	if t.user != "" {
		vars["ansible_user"] = value{v: t.user, line: n}
	}
	for _, kv := range toks[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			if plain {
				return b.errorf(n, "want one [user@]host[:port] per line, got %q", line)
			}
			hint := ""
			if !ok {
				hint = " (one host per line)"
			}
			return b.errorf(n, "host %s: want key=value after the host name, got %q%s", toks[0], kv, hint)
		}
		vars[k] = value{v: unquote(v), line: n}
	}
	names, err := b.expand(t.pattern, n)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := checkName(name); err != nil {
			return b.errorf(n, "host %v", err)
		}
		if plain && t.portStr != "" {
			// A plain list names each line's host as written, so
			// one server on several ports is several hosts.
			if isIPv6(name) {
				name = "[" + name + "]"
			}
			name += ":" + t.portStr
			delete(vars, "ansible_port")
		}
		if err := b.addHost(name, n, g, vars); err != nil {
			return err
		}
	}
	return nil
}

// shellSplit splits a line into words as a POSIX shell does (Python's
// shlex with comments, which Ansible uses): quotes, backslashes, and # to
// the end of the line outside quotes.
func shellSplit(s string, comments bool) ([]string, error) {
	var out []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		case c == '#' && comments:
			if inWord {
				out = append(out, w.String())
			}
			return out, nil
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' quote")
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \" quote")
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("a \\ ends the line with nothing to escape")
			}
			inWord = true
			i++
			w.WriteByte(s[i])
		default:
			inWord = true
			w.WriteByte(c)
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out, nil
}

// varsValue reads the value of a [g:vars] line as Ansible's literal
// evaluation does for the values it accepts as literals: a quoted string
// loses its quotes, and a literal (number, quoted string, True, False,
// None) followed by a # comment loses the comment; anything else is kept
// as written, # included.
func varsValue(v string) string {
	inQuote := byte(0)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inQuote != 0:
			if c == '\\' {
				i++
			} else if c == inQuote {
				inQuote = 0
			}
		case c == '"' || c == '\'':
			inQuote = c
		case c == '#':
			if head := strings.TrimSpace(v[:i]); isLiteral(head) {
				return unquote(head)
			}
			return v
		}
	}
	return unquote(v)
}

func isLiteral(s string) bool {
	switch s {
	case "True", "False", "None":
		return true
	case "":
		return false
	}
	if u := unquote(s); u != s {
		return true
	}
	_, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	return err == nil && !strings.ContainsAny(s, "xXnN") // no hex, inf, nan
}

// unquote removes one level of matching quotes around a whole value, as
// Ansible's literal evaluation of a quoted string does.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		inner := v[1 : len(v)-1]
		if !strings.ContainsRune(inner, rune(v[0])) {
			return strings.ReplaceAll(inner, `\\`, `\`)
		}
	}
	return v
}
