package inventory

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
)

// NoMatchError is returned by Select when a term of the pattern matches
// no group or host, or when the pattern as a whole selects no host.
type NoMatchError struct {
	Pattern string   // the whole pattern
	Term    string   // the term that matched nothing; "" when the whole pattern selects no host
	Where   string   // file:line of the term when it came from an @file
	Close   []string // groups and hosts with names close to Term
	Groups  []string // the inventory's groups
	Hosts   int      // the number of hosts in the inventory
}

func (e *NoMatchError) Error() string {
	var b strings.Builder
	if e.Term == "" {
		fmt.Fprintf(&b, "inventory: pattern %q selects no hosts", e.Pattern)
	} else {
		if e.Where != "" {
			b.WriteString("inventory: " + e.Where + ": ")
		} else {
			b.WriteString("inventory: ")
		}
		fmt.Fprintf(&b, "no group or host matches %q", e.Term)
		if e.Term != e.Pattern {
			fmt.Fprintf(&b, " in pattern %q", e.Pattern)
		}
		if len(e.Close) > 0 {
			fmt.Fprintf(&b, "; did you mean %s?", strings.Join(e.Close, ", "))
		}
	}
	groups := e.Groups
	more := ""
	if len(groups) > 20 {
		more = fmt.Sprintf(", … (%d more)", len(groups)-20)
		groups = groups[:20]
	}
	fmt.Fprintf(&b, " (%d hosts; groups: %s%s)", e.Hosts, strings.Join(groups, ", "), more)
	return b.String()
}

// term is one element of a pattern after splitting.
type term struct {
	op    byte // 0 union, '&' intersection, '!' exclusion
	body  string
	where string // file:line for a term read from an @file
	lines []term // the lines of an @file, whose union the term stands for
}

// Select returns the hosts a pattern selects, in inventory order, each
// once. See the package documentation for the pattern language.
func (inv *Inventory) Select(pattern string) ([]Host, error) {
	terms, err := splitPattern(pattern)
	if err != nil {
		return nil, err
	}
	var unions, inters, excls []term
	for _, t := range terms {
		switch t.op {
		case '&':
			inters = append(inters, t)
		case '!':
			excls = append(excls, t)
		default:
			unions = append(unions, t)
		}
	}
	if len(unions) == 0 {
		unions = []term{{body: "all"}}
	}
	sel := make([]bool, len(inv.hosts))
	for _, t := range unions {
		set, err := inv.matchTerm(pattern, t)
		if err != nil {
			return nil, err
		}
		for _, i := range set {
			sel[i] = true
		}
	}
	for _, t := range inters {
		set, err := inv.matchTerm(pattern, t)
		if err != nil {
			return nil, err
		}
		keep := make([]bool, len(inv.hosts))
		for _, i := range set {
			keep[i] = sel[i]
		}
		sel = keep
	}
	for _, t := range excls {
		set, err := inv.matchTerm(pattern, t)
		if err != nil {
			return nil, err
		}
		for _, i := range set {
			sel[i] = false
		}
	}
	var out []Host
	for i, ok := range sel {
		if ok {
			out = append(out, inv.hosts[i].clone())
		}
	}
	if len(out) == 0 {
		return nil, &NoMatchError{Pattern: pattern, Groups: inv.Groups(), Hosts: len(inv.hosts)}
	}
	return out, nil
}

// splitPattern splits a pattern into terms, as Ansible does: on commas
// and spaces, then on colons outside [brackets], except that a piece which is an IPv6
// address or a host:port name of a plain list is one term. @file terms are
// replaced by the file's lines.
func splitPattern(pattern string) ([]term, error) {
	if strings.TrimSpace(pattern) == "" {
		return nil, fmt.Errorf("inventory: empty pattern; use all for every host")
	}
	var out []term
	var pieces []string
	for _, piece := range strings.Split(pattern, ",") {
		// As Ansible, spaces separate terms too: "web db".
		pieces = append(pieces, strings.Fields(piece)...)
	}
	for _, piece := range pieces {
		for _, p := range splitColons(piece) {
			t := term{body: p}
			if p[0] == '&' || p[0] == '!' {
				t.op, t.body = p[0], p[1:]
			}
			if t.body == "" {
				return nil, fmt.Errorf("inventory: pattern %q: %q needs a group or host after it", pattern, string(t.op))
			}
			if t.body[0] == '@' {
				lines, err := readLimitFile(t.body[1:])
				if err != nil {
					return nil, err
				}
				t.lines = lines
			}
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("inventory: pattern %q holds no group or host", pattern)
	}
	return out, nil
}

// splitColons splits a piece on colons outside [brackets]. A piece that
// is an IPv6 address stays whole, and a part of only digits joins the part
// before it: web2:2222 is the name of a plain list's host, not a union.
func splitColons(piece string) []string {
	if isIPv6(strings.TrimLeft(piece, "&!")) {
		return []string{piece}
	}
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(piece); i++ {
		switch piece[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				parts = append(parts, piece[start:i])
				start = i + 1
			}
		}
	}
	parts = append(parts, piece[start:])
	var out []string
	for _, p := range parts {
		if len(out) > 0 && p != "" && strings.Trim(p, "0123456789") == "" && out[len(out)-1] != "" {
			out[len(out)-1] += ":" + p
			continue
		}
		out = append(out, p)
	}
	return slices.DeleteFunc(out, func(s string) bool { return strings.TrimSpace(s) == "" })
}

// readLimitFile reads an @file: one host name or pattern per line, blank
// lines and # comments skipped, as a --failed-to file is written.
func readLimitFile(name string) ([]term, error) {
	if name == "" {
		return nil, fmt.Errorf("inventory: @ needs a file name")
	}
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("inventory: limit file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("inventory: limit file %s is not a regular file", name)
	}
	data, err := readFile(name)
	if err != nil {
		return nil, err
	}
	var out []term
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxFileSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.ContainsAny(line[:1], "&!@") {
			return nil, fmt.Errorf("inventory: %s:%d: a limit file lists hosts or groups, one per line; got %q", name, n, line)
		}
		out = append(out, term{body: line, where: fmt.Sprintf("%s:%d", name, n)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("inventory: limit file %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("inventory: limit file %s lists no hosts", name)
	}
	return out, nil
}

// matchTerm returns the indexes of the hosts one term selects, ascending.
// As Ansible does, a name matching a group selects that group's hosts; a
// host is matched by name when no group matched or the term is a glob or
// regex.
func (inv *Inventory) matchTerm(pattern string, t term) ([]int, error) {
	if t.lines != nil {
		seen := make([]bool, len(inv.hosts))
		for _, l := range t.lines {
			set, err := inv.matchTerm(pattern, l)
			if err != nil {
				return nil, err
			}
			for _, i := range set {
				seen[i] = true
			}
		}
		var out []int
		for i, ok := range seen {
			if ok {
				out = append(out, i)
			}
		}
		return out, nil
	}
	body := t.body
	if i, ok := inv.index[body]; ok {
		return []int{i}, nil
	}
	var match func(string) bool
	isPattern := false
	switch {
	case body[0] == '~':
		// Parsed alone first, so that "a)|(b" cannot escape the
		// anchor: as Python's re.match, the name must match from its
		// start.
		_, err := syntax.Parse(body[1:], syntax.Perl)
		var re *regexp.Regexp
		if err == nil {
			re, err = regexp.Compile(`^(?:` + body[1:] + `)`)
		}
		if err != nil {
			return nil, fmt.Errorf("inventory: pattern %q: bad regex %q: %v", pattern, body[1:], err)
		}
		match, isPattern = re.MatchString, true
	case strings.ContainsAny(body, "*?["):
		if base, _, ok := strings.Cut(body, "["); ok && inv.hasGroup(base) && strings.HasSuffix(body, "]") {
			return nil, fmt.Errorf("inventory: pattern %q: subscripts like %s are not supported; name the hosts, or use a glob or ~regex", pattern, body)
		}
		re, err := globRegexp(body)
		if err != nil {
			return nil, fmt.Errorf("inventory: pattern %q: bad glob %q: %v", pattern, body, err)
		}
		match, isPattern = re.MatchString, true
	default:
		match = func(s string) bool { return s == body }
		isPattern = strings.Contains(body, ".") // as Ansible: a dotted name is also looked up as a host
	}
	seen := make([]bool, len(inv.hosts))
	groupMatched := false
	for _, g := range inv.groups {
		if match(g) {
			groupMatched = true
			for _, i := range inv.members[g] {
				seen[i] = true
			}
		}
	}
	if !groupMatched || isPattern {
		for i := range inv.hosts {
			if match(inv.hosts[i].Name) {
				seen[i] = true
			}
		}
	}
	var out []int
	for i, ok := range seen {
		if ok {
			out = append(out, i)
		}
	}
	if len(out) == 0 && !groupMatched {
		return nil, &NoMatchError{Pattern: pattern, Term: t.body, Where: t.where, Close: inv.closeTo(t.body), Groups: inv.Groups(), Hosts: len(inv.hosts)}
	}
	return out, nil
}

func (inv *Inventory) hasGroup(name string) bool {
	return slices.Contains(inv.groups, name)
}

// globRegexp translates a shell glob as Python's fnmatch does: * any run,
// ? one character, [seq], [!seq]; the whole name must match.
func globRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^(?s:")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(glob) && glob[j] == '!' {
				j++
			}
			if j < len(glob) && glob[j] == ']' {
				j++
			}
			for j < len(glob) && glob[j] != ']' {
				j++
			}
			if j >= len(glob) {
				b.WriteString(`\[`)
				continue
			}
			set := glob[i+1 : j]
			if strings.HasPrefix(set, "!") {
				set = "^" + set[1:]
			} else if strings.HasPrefix(set, "^") {
				set = `\` + set
			}
			set = strings.ReplaceAll(set, `\`, `\\`)
			b.WriteString("[" + set + "]")
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(")$")
	return regexp.Compile(b.String())
}

// closeTo returns up to five group and host names close to s: sharing a
// prefix, containing it, or within a small edit distance.
func (inv *Inventory) closeTo(s string) []string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	limit := max(1, len(s)/4)
	consider := func(name string) {
		d := editDistance(strings.ToLower(s), strings.ToLower(name), limit)
		if d > limit && len(s) >= 3 && (strings.Contains(name, s) || strings.Contains(s, name) && len(name) >= 3) {
			d = limit + 1 // below any edit, still worth a mention
		}
		if d <= limit+1 {
			cs = append(cs, cand{name, d})
		}
	}
	for _, g := range inv.groups {
		consider(g)
	}
	for i := range inv.hosts {
		if len(cs) > 1000 {
			break
		}
		consider(inv.hosts[i].Name)
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	var out []string
	for _, c := range cs {
		if len(out) == 5 || c.d > cs[0].d {
			break // only the closest
		}
		if !slices.Contains(out, c.name) {
			out = append(out, c.name)
		}
	}
	return out
}

// editDistance is the edit distance of a and b counting a swap of two
// neighbours as one edit (optimal string alignment), or limit+2 when it
// is more than limit+1.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit+1 || -d > limit+1 {
		return limit + 2
	}
	pp := make([]int, len(b)+1) // row i-2
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
			best = min(best, cur[j])
		}
		if best > limit+1 {
			return limit + 2
		}
		pp, prev, cur = prev, cur, pp
	}
	return prev[len(b)]
}
