package inventory

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// MaxHosts bounds the hosts of one inventory, ranges included, so that a
// range like web[0:999999999] is an error rather than a machine out of
// memory.
const MaxHosts = 1 << 20

// maxExpanded bounds the host names ranges make in one inventory,
// repeats included.
const maxExpanded = 4 * MaxHosts

// maxGroups bounds the groups of one inventory; the group graph is
// walked recursively.
const maxGroups = 1 << 17

// maxMemberships bounds the sum over hosts of the groups each is in,
// ancestors included: what a deep chain of groups costs per host.
const maxMemberships = 1 << 24

// limits are the bounds a builder enforces; always defaultLimits but in
// the package's own tests of them.
type limits struct {
	hosts, groups, expanded int
}

var defaultLimits = limits{hosts: MaxHosts, groups: maxGroups, expanded: maxExpanded}

// maxFileSize bounds the size of an inventory or @file read.
const maxFileSize = 64 << 20

// Host is one host of an inventory, with its variables resolved.
type Host struct {
	// Name is the inventory name of the host: what patterns, --limit
	// files and output speak of.
	Name string
	// Addr is the address to dial: ansible_host, or Name. An IPv6
	// address is bare (no brackets).
	Addr string
	// Port is ansible_port; 0 means the default.
	Port int
	// User is ansible_user; "" means the default.
	User string
	// Jump is the ProxyJump destination ([user@]host[:port], or a comma
	// list of them) taken from ansible_ssh_common_args or
	// ansible_ssh_extra_args; "" means the inventory names none, "none"
	// that it says none (ProxyJump=none): a direct connection, whatever
	// jump the client would use by default.
	Jump string
	// Groups are the groups the host is in, directly or through
	// children, sorted, without "all".
	Groups []string
	// Vars are the host's variables after precedence (all < parent <
	// child < host), as strings; a YAML list or map is JSON.
	Vars map[string]string
}

// Inventory is a loaded inventory. It is immutable and safe for
// concurrent use.
type Inventory struct {
	file    string
	hosts   []Host
	index   map[string]int   // host name → index in hosts
	groups  []string         // all, ungrouped, then in order of appearance
	members map[string][]int // group → its hosts (with its children's), ascending
}

// ParseError is an error in an inventory file.
type ParseError struct {
	File string
	Line int // 0 when the error is about the file as a whole
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("inventory: %s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("inventory: %s: %s", e.File, e.Msg)
}

// Format is an inventory file format.
type Format int

// The formats Load detects.
const (
	FormatINI Format = iota
	FormatYAML
	FormatPlain
)

func (f Format) String() string {
	switch f {
	case FormatINI:
		return "ini"
	case FormatYAML:
		return "yaml"
	case FormatPlain:
		return "plain"
	}
	return "unknown"
}

// Load reads the inventory at path, detecting its format, and the
// group_vars and host_vars beside it.
func Load(path string) (*Inventory, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	f, err := detect(path, data)
	if err != nil {
		return nil, err
	}
	return parse(path, data, f, filepath.Dir(path))
}

// readFile reads a regular file of at most maxFileSize bytes.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if fi.IsDir() {
		return nil, &ParseError{File: path, Msg: "is a directory; give one inventory file (inventory directories are not read)"}
	}
	if !fi.Mode().IsRegular() {
		return nil, &ParseError{File: path, Msg: "is not a regular file"}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, &ParseError{File: path, Msg: fmt.Sprintf("is larger than %d bytes", maxFileSize)}
	}
	return data, nil
}

// Parse reads an inventory from data; name is used in errors and to
// detect the format by extension.
func Parse(name string, data []byte) (*Inventory, error) {
	f, err := detect(name, data)
	if err != nil {
		return nil, err
	}
	return ParseFormat(name, data, f)
}

// ParseFormat reads an inventory of the given format from data. Unlike
// Load, it reads no group_vars or host_vars.
func ParseFormat(name string, data []byte, f Format) (*Inventory, error) {
	return parse(name, data, f, "")
}

// parse reads an inventory, and the group_vars and host_vars beside it
// when varsDir is not "".
func parse(name string, data []byte, f Format, varsDir string) (*Inventory, error) {
	if len(data) > maxFileSize {
		return nil, &ParseError{File: name, Msg: "inventory too large"}
	}
	return newBuilder(name).build(data, f, varsDir)
}

// build parses data, reads the variable directories and resolves.
func (b *builder) build(data []byte, f Format, varsDir string) (*Inventory, error) {
	var err error
	switch f {
	case FormatINI:
		err = b.parseINI(data, false)
	case FormatPlain:
		err = b.parseINI(data, true)
	case FormatYAML:
		err = b.parseYAML(data)
	default:
		err = b.errorf(0, "unknown format")
	}
	if err != nil {
		return nil, err
	}
	if b.tooMany > 0 {
		return nil, b.errorf(b.tooMany, "more than %d groups", b.limits.groups)
	}
	if varsDir != "" {
		if err := b.loadVarDirs(varsDir); err != nil {
			return nil, err
		}
	}
	return b.resolve()
}

var yamlKeyLine = regexp.MustCompile(`^[^\s#;\[][^\s]*:(\s|$)`)

// detect picks the format: by extension for .yml, .yaml and .json (YAML)
// and .ini and .cfg (INI), else by the first line that is not blank or a
// comment: a section header means INI, a "key:" line, "---" or "{" means
// YAML, and a file of lines with no sections and no variables is a plain
// list.
func detect(name string, data []byte) (Format, error) {
	if bytes.HasPrefix(data, []byte("#!")) {
		return 0, &ParseError{File: name, Line: 1, Msg: "starts with #!: inventory scripts are not run; save the script's output as YAML, or give an INI, YAML or plain-list file"}
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return 0, &ParseError{File: name, Msg: "holds a NUL byte: not a text inventory"}
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yml", ".yaml", ".json":
		return FormatYAML, nil
	case ".ini", ".cfg":
		return FormatINI, nil
	}
	first := ""
	sections, vars := false, false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if first == "" {
			first = line
			if line == "---" || line[0] == '{' || yamlKeyLine.MatchString(line) && !isIPv6(line) {
				return FormatYAML, nil
			}
		}
		if sectionRE.MatchString(line) || line[0] == '[' && !isHostLine(line) {
			sections = true
		} else if toks, err := shellSplit(line, true); err != nil || len(toks) > 1 {
			vars = true
		}
	}
	if !sections && !vars {
		return FormatPlain, nil
	}
	return FormatINI, nil
}

// builder collects groups and hosts as a parser reads them; resolve turns
// them into an Inventory.
type builder struct {
	file       string
	groups     map[string]*group
	groupOrder []string
	hosts      map[string]*hostEntry
	hostOrder  []string
	tooMany    int // line of the group past maxGroups, 0 if none
	expanded   int // host names made by ranges so far, repeats included
	limits     limits
	// Variables from group_vars/NAME and host_vars/NAME files.
	groupFileVars map[string]map[string]value
	hostFileVars  map[string]map[string]value
}

type group struct {
	name     string
	line     int
	hosts    []string
	hostSet  map[string]bool
	children []string
	childSet map[string]bool
	childAt  map[string]int // child → line of its declaration
	parents  []string
	vars     map[string]value
	defined  bool // declared as [g], [g:children] or in YAML; [g:vars] alone does not define
}

type hostEntry struct {
	name   string
	line   int
	vars   map[string]value
	direct []string // groups listed directly, in order
}

// value is a variable's value and where it was set.
type value struct {
	v    string
	file string // "" for the inventory file
	line int
}

func newBuilder(file string) *builder {
	b := &builder{file: file, groups: map[string]*group{}, hosts: map[string]*hostEntry{}, limits: defaultLimits}
	b.group("all", 0).defined = true
	b.group("ungrouped", 0).defined = true
	return b
}

func (b *builder) errorf(line int, format string, args ...any) error {
	return &ParseError{File: b.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// errAt reports an error about a variable where it was set.
func (b *builder) errAt(v value, format string, args ...any) error {
	file := b.file
	if v.file != "" {
		file = v.file
	}
	return &ParseError{File: file, Line: v.line, Msg: fmt.Sprintf(format, args...)}
}

func (b *builder) group(name string, line int) *group {
	g := b.groups[name]
	if g == nil {
		if len(b.groups) >= b.limits.groups {
			b.tooMany = line
		}
		g = &group{name: name, line: line, hostSet: map[string]bool{}, childSet: map[string]bool{}, childAt: map[string]int{}, vars: map[string]value{}}
		b.groups[name] = g
		b.groupOrder = append(b.groupOrder, name)
	}
	return g
}

// expand expands the ranges of a host pattern, within MaxHosts hosts and
// maxExpanded names made in all: writing a large range many times costs
// as much as writing as many hosts.
func (b *builder) expand(pattern string, line int) ([]string, error) {
	names, err := expandRanges(pattern, MaxHosts)
	if err != nil {
		return nil, b.errorf(line, "%v", err)
	}
	if b.expanded += len(names); b.expanded > b.limits.expanded {
		return nil, b.errorf(line, "ranges make more than %d host names in all (a host written again counts again)", b.limits.expanded)
	}
	return names, nil
}

// addHost adds host name to group g (nil: only to the inventory) with
// its variables, later values winning.
func (b *builder) addHost(name string, line int, g *group, vars map[string]value) error {
	h := b.hosts[name]
	if h == nil {
		if len(b.hosts) >= b.limits.hosts {
			return b.errorf(line, "more than %d hosts", b.limits.hosts)
		}
		h = &hostEntry{name: name, line: line, vars: map[string]value{}}
		b.hosts[name] = h
		b.hostOrder = append(b.hostOrder, name)
	}
	for k, v := range vars {
		h.vars[k] = v
	}
	if g != nil && !g.hostSet[name] {
		g.hostSet[name] = true
		g.hosts = append(g.hosts, name)
		h.direct = append(h.direct, g.name)
	}
	return nil
}

func (b *builder) addChild(parent, child *group, line int) error {
	if child.name == "all" {
		return b.errorf(line, "group %q cannot have all as a child", parent.name)
	}
	if parent == child {
		return b.errorf(line, "group %q lists itself as a child", parent.name)
	}
	if !parent.childSet[child.name] {
		parent.childSet[child.name] = true
		parent.children = append(parent.children, child.name)
		parent.childAt[child.name] = line
		child.parents = append(child.parents, parent.name)
	}
	return nil
}

// resolve checks the group graph, applies variable precedence and builds
// the hosts.
func (b *builder) resolve() (*Inventory, error) {
	all := b.groups["all"]
	ungrouped := b.groups["ungrouped"]
	// Groups without a parent are children of all.
	for _, name := range b.groupOrder {
		g := b.groups[name]
		if name != "all" && len(g.parents) == 0 {
			if err := b.addChild(all, g, 0); err != nil {
				return nil, err
			}
		}
	}
	if err := b.checkCycles(); err != nil {
		return nil, err
	}
	// Hosts in no group but all are in ungrouped; ungrouped keeps only
	// those.
	var keep []string
	for _, hn := range ungrouped.hosts {
		if len(b.hosts[hn].direct) == 1 {
			keep = append(keep, hn)
		}
	}
	ungrouped.hosts = keep
	for _, hn := range b.hostOrder {
		h := b.hosts[hn]
		only := true
		for _, g := range h.direct {
			if g != "all" && g != "ungrouped" {
				only = false
			}
		}
		if only && !ungrouped.hostSet[hn] {
			ungrouped.hostSet[hn] = true
			ungrouped.hosts = append(ungrouped.hosts, hn)
			h.direct = append(h.direct, "ungrouped")
		} else if !only && ungrouped.hostSet[hn] {
			h.direct = slices.DeleteFunc(h.direct, func(s string) bool { return s == "ungrouped" })
		}
	}

	depth := map[string]int{}
	var depthOf func(string) int
	depthOf = func(name string) int {
		if d, ok := depth[name]; ok {
			return d
		}
		d := 0
		for _, p := range b.groups[name].parents {
			d = max(d, depthOf(p)+1)
		}
		depth[name] = d
		return d
	}
	priority := map[string]int{}
	for _, name := range b.groupOrder {
		depthOf(name)
		g := b.groups[name]
		priority[name] = 1
		if v, ok := g.vars["ansible_group_priority"]; ok {
			p, err := strconv.Atoi(v.v)
			if err != nil {
				return nil, b.errAt(v, "group %q: ansible_group_priority %q is not an integer", name, v.v)
			}
			priority[name] = p
		}
	}

	inv := &Inventory{file: b.file, index: make(map[string]int, len(b.hostOrder)), members: map[string][]int{}}
	inv.groups = append(inv.groups, "all", "ungrouped")
	for _, name := range b.groupOrder {
		if name != "all" && name != "ungrouped" {
			inv.groups = append(inv.groups, name)
		}
	}
	inv.hosts = make([]Host, 0, len(b.hostOrder))
	memberships := 0
	closures := map[string]*closure{}
	for i, hn := range b.hostOrder {
		h := b.hosts[hn]
		// Hosts listed in the same groups share their groups' closure,
		// order and merged variables.
		key := strings.Join(h.direct, "\x00")
		c := closures[key]
		if c == nil {
			c = b.closure(h.direct, depth, priority)
			closures[key] = c
		}
		memberships += len(c.groups)
		if memberships > maxMemberships {
			return nil, b.errorf(h.line, "more than %d memberships of hosts in groups (children included); the groups nest too deep for this many hosts", maxMemberships)
		}
		for _, g := range c.groups {
			inv.members[g] = append(inv.members[g], i)
		}
		vars := make(map[string]value, len(c.vars)+len(h.vars))
		for k, v := range c.vars {
			vars[k] = v
		}
		for k, v := range h.vars {
			vars[k] = v
		}
		for k, v := range b.hostFileVars[hn] {
			vars[k] = v
		}
		host, err := b.connection(hn, vars)
		if err != nil {
			return nil, err
		}
		host.Groups = slices.Clone(c.names)
		inv.index[hn] = i
		inv.hosts = append(inv.hosts, host)
	}
	return inv, nil
}

// closure is what a set of direct groups implies for a host.
type closure struct {
	groups []string         // the groups and their ancestors, all included, in precedence order
	names  []string         // the same without all, sorted
	vars   map[string]value // their variables merged by precedence
}

func (b *builder) closure(direct []string, depth, priority map[string]int) *closure {
	in := map[string]bool{"all": true}
	var walk func(string)
	walk = func(name string) {
		if in[name] {
			return
		}
		in[name] = true
		for _, p := range b.groups[name].parents {
			walk(p)
		}
	}
	for _, g := range direct {
		walk(g)
	}
	c := &closure{groups: make([]string, 0, len(in)), vars: map[string]value{}}
	for g := range in {
		c.groups = append(c.groups, g)
	}
	slices.SortFunc(c.groups, func(x, y string) int {
		if d := depth[x] - depth[y]; d != 0 {
			return d
		}
		if d := priority[x] - priority[y]; d != 0 {
			return d
		}
		return strings.Compare(x, y)
	})
	// As Ansible: every group's variables from the inventory file, then
	// group_vars/all, then the other group_vars files, each in the
	// groups' order.
	for _, g := range c.groups {
		for k, v := range b.groups[g].vars {
			c.vars[k] = v
		}
		if g != "all" {
			c.names = append(c.names, g)
		}
	}
	for _, g := range c.groups {
		for k, v := range b.groupFileVars[g] {
			c.vars[k] = v
		}
	}
	slices.Sort(c.names)
	return c
}

// checkCycles reports a group that is its own ancestor, with the path.
func (b *builder) checkCycles() error {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(string) error
	visit = func(name string) error {
		switch state[name] {
		case onPath:
			i := slices.Index(path, name)
			cycle := append(slices.Clone(path[i:]), name)
			from := b.groups[path[len(path)-1]]
			return b.errorf(from.childAt[name], "groups form a cycle: %s", strings.Join(cycle, " > "))
		case done:
			return nil
		}
		state[name] = onPath
		path = append(path, name)
		for _, c := range b.groups[name].children {
			if err := visit(c); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[name] = done
		return nil
	}
	for _, name := range b.groupOrder {
		if err := visit(name); err != nil {
			return err
		}
	}
	return nil
}

// connection builds a Host from its resolved variables.
func (b *builder) connection(name string, vars map[string]value) (Host, error) {
	h := Host{Name: name, Addr: name, Vars: make(map[string]string, len(vars))}
	for k, v := range vars {
		h.Vars[k] = v.v
	}
	if addr, port, err := splitAddr(name); err == nil {
		// A plain list names a host as written: web1:2222, [::1]:2222.
		h.Addr, h.Port = addr, port
	}
	// The names before Ansible 2.0 still count when the new ones are
	// not set.
	for _, k := range []string{"host", "port", "user"} {
		if v, ok := vars["ansible_ssh_"+k]; ok {
			if _, set := vars["ansible_"+k]; !set {
				vars["ansible_"+k] = v
			}
		}
	}
	for _, k := range []string{"ansible_host", "ansible_port", "ansible_user", "ansible_ssh_common_args", "ansible_ssh_extra_args"} {
		if v, ok := vars[k]; ok && strings.Contains(v.v, "{{") {
			return h, b.errAt(v, "host %s: %s %q is a template; templates are not evaluated, give the value itself", name, k, v.v)
		}
	}
	if v, ok := vars["ansible_host"]; ok {
		addr, port, err := splitAddr(v.v)
		switch {
		case err != nil || v.v == "":
			return h, b.errAt(v, "host %s: ansible_host %q is not a host name or address", name, v.v)
		case port != 0:
			return h, b.errAt(v, "host %s: ansible_host %q holds a port; set ansible_port=%d and ansible_host=%s", name, v.v, port, addr)
		case strings.HasPrefix(addr, "-"):
			return h, b.errAt(v, "host %s: ansible_host %q starts with '-'", name, v.v)
		}
		h.Addr = addr
	}
	if strings.HasPrefix(h.Addr, "-") {
		return h, b.errorf(b.hosts[name].line, "host %s: an address may not start with '-'; set ansible_host", name)
	}
	if v, ok := vars["ansible_port"]; ok {
		p, err := strconv.Atoi(v.v)
		if err != nil || p < 1 || p > 65535 {
			return h, b.errAt(v, "host %s: ansible_port %q is not a port (1-65535)", name, v.v)
		}
		h.Port = p
	}
	if v, ok := vars["ansible_user"]; ok {
		if checkName(v.v) != nil || strings.ContainsAny(v.v, "@:") || v.v[0] == '-' {
			return h, b.errAt(v, "host %s: ansible_user %q is not a user name", name, v.v)
		}
		h.User = v.v
	}
	for _, k := range []string{"ansible_ssh_common_args", "ansible_ssh_extra_args"} {
		v, ok := vars[k]
		if !ok {
			continue
		}
		jump, found, err := jumpFromArgs(v.v)
		if err != nil {
			return h, b.errAt(v, "host %s: %s: %v", name, k, err)
		}
		if found {
			// ssh takes the first value it is given; common args
			// come before extra args on Ansible's command line.
			h.Jump = jump
			break
		}
	}
	return h, nil
}

// Groups returns the inventory's group names: all, ungrouped, then the
// others in the order they first appear.
func (inv *Inventory) Groups() []string {
	return slices.Clone(inv.groups)
}

// Hosts returns every host, in inventory order.
func (inv *Inventory) Hosts() []Host {
	out := make([]Host, len(inv.hosts))
	for i := range inv.hosts {
		out[i] = inv.hosts[i].clone()
	}
	return out
}

func (h Host) clone() Host {
	h.Groups = slices.Clone(h.Groups)
	vars := make(map[string]string, len(h.Vars))
	for k, v := range h.Vars {
		vars[k] = v
	}
	h.Vars = vars
	return h
}
