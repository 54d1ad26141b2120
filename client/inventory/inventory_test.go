package inventory_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/client/inventory"
)

// TestDocumentedShapes reads the same fleet in INI and YAML, written in
// the shapes of Ansible's inventory guide (ungrouped hosts, groups of
// groups, group and host variables, numeric, lettered and stepped ranges,
// an ansible_host alias, a bastion in ansible_ssh_common_args), and checks
// both give the same hosts with the same resolved variables.
func TestDocumentedShapes(t *testing.T) {
	t.Parallel()
	ini := load(t, "testdata/fleet.ini")
	yml := load(t, "testdata/fleet.yml")
	if !reflect.DeepEqual(ini.Hosts(), yml.Hosts()) {
		t.Errorf("INI and YAML differ:\nini  %+v\nyaml %+v", ini.Hosts(), yml.Hosts())
	}
	byName := map[string]inventory.Host{}
	for _, h := range ini.Hosts() {
		byName[h.Name] = h
	}
	if got, want := names(ini.Hosts()), "relay www01 www02 www03 cache pg-a pg-b pg-c job1 job5 job9 gw deep"; got != want {
		t.Errorf("hosts = %s, want %s", got, want)
	}
	tests := []struct {
		host   string
		field  string
		got    any
		want   any
		reason string
	}{
		{"relay.corp.test", "Groups", byName["relay.corp.test"].Groups, []string{"ungrouped"}, "a host before any section is ungrouped"},
		{"www01.corp.test", "Groups", byName["www01.corp.test"].Groups, []string{"europe", "france", "paris", "web"}, "groups through children, sorted, without all"},
		{"cache.corp.test", "Groups", byName["cache.corp.test"].Groups, []string{"db", "web"}, "a host in two groups is one host"},
		{"cache.corp.test", "Port", byName["cache.corp.test"].Port, 2222, "ansible_port on the host line"},
		{"cache.corp.test", "User", byName["cache.corp.test"].User, "deploy", "ansible_user from [all:vars]"},
		{"www01.corp.test", "tz", byName["www01.corp.test"].Vars["tz"], "Europe/Paris (city)", "child group beats parent; quotes removed"},
		{"pg-b.corp.test", "tz", byName["pg-b.corp.test"].Vars["tz"], "Europe/Paris", "parent group beats grandparent"},
		{"www02.corp.test", "ntp", byName["www02.corp.test"].Vars["ntp"], "ntp.lyon.corp.test", "host variable beats group"},
		{"pg-b.corp.test", "ntp", byName["pg-b.corp.test"].Vars["ntp"], "ntp.fr.corp.test", "inherited from france"},
		{"www01.corp.test", "owner", byName["www01.corp.test"].Vars["owner"], "eu-ops", "group beats all"},
		{"www03.corp.test", "owner", byName["www03.corp.test"].Vars["owner"], "ops", "all applies to every host"},
		{"gw", "Addr", byName["gw"].Addr, "192.0.2.50", "ansible_host"},
		{"gw", "Port", byName["gw"].Port, 5555, "ansible_port"},
		{"www03.corp.test", "Addr", byName["www03.corp.test"].Addr, "www03.corp.test", "the name when no ansible_host"},
		{"www03.corp.test", "Port", byName["www03.corp.test"].Port, 0, "0 is the default port"},
		{"deep.corp.test", "Jump", byName["deep.corp.test"].Jump, "jump@gw.corp.test", "ProxyCommand ssh -W %h:%p"},
		{"gw", "Jump", byName["gw"].Jump, "", "no jump"},
	}
	for _, tc := range tests {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s %s = %#v, want %#v (%s)", tc.host, tc.field, tc.got, tc.want, tc.reason)
		}
	}
	wantGroups := "all ungrouped web db batch paris lyon france europe asia gate behind"
	if got := strings.Join(ini.Groups(), " "); got != wantGroups {
		t.Errorf("INI groups = %s, want %s", got, wantGroups)
	}
}

func parse(t *testing.T, name, content string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse(name, []byte(content))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return inv
}

func TestRanges(t *testing.T) {
	t.Parallel()
	tests := []struct{ line, want string }{
		{"web[1:3]", "web1 web2 web3"},
		{"web[01:03]", "web01 web02 web03"},
		{"web[08:11]", "web08 web09 web10 web11"},
		{"web[001:003].corp", "web001.corp web002.corp web003.corp"},
		{"web[9:11]", "web9 web10 web11"},
		{"web[:2]", "web0 web1 web2"},
		{"web[1:10:3]", "web1 web4 web7 web10"},
		{"web[01:10:4]", "web01 web05 web09"},
		{"db-[a:c]", "db-a db-b db-c"},
		{"db-[y:B]", "db-y db-z db-A db-B"},
		{"db-[a:e:2]", "db-a db-c db-e"},
		{"[a:b]-node", "a-node b-node"},
		{"r[1:2]n[a:b]", "r1na r1nb r2na r2nb"},
		{"web[1:1]", "web1"},
		{"web[1:2]:2222", "web1 web2"},
	}
	for _, tc := range tests {
		inv := parse(t, "r.ini", "[g]\n"+tc.line+"\n")
		hs, _ := inv.Select("all")
		var got []string
		for _, h := range hs {
			got = append(got, h.Name)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s = %v, want %s", tc.line, got, tc.want)
		}
	}
}

// TestPortForms: where a port comes from, and that a line's own
// ansible_port wins over host:port, as in Ansible.
func TestPortForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, content string
		host                string
		addr                string
		port                int
	}{
		{"ini-host-port", "p.ini", "[g]\nweb1:2222\n", "web1", "web1", 2222},
		{"ini-line-var-wins", "p.ini", "[g]\nweb1:2222 ansible_port=2200\n", "web1", "web1", 2200},
		{"ini-host-var-beats-group", "p.ini", "[g]\nweb1:2222\n[g:vars]\nansible_port=2300\n", "web1", "web1", 2222},
		{"ini-group-port", "p.ini", "[g]\nweb1\n[g:vars]\nansible_port=2300\n", "web1", "web1", 2300},
		{"ini-ipv6-bare", "p.ini", "[g]\n2001:db8::1\n", "2001:db8::1", "2001:db8::1", 0},
		{"ini-ipv6-port", "p.ini", "[g]\n[2001:db8::1]:2222\n", "2001:db8::1", "2001:db8::1", 2222},
		{"ini-legacy-names", "p.ini", "[g]\nold ansible_ssh_host=10.0.0.5 ansible_ssh_port=2201\n", "old", "10.0.0.5", 2201},
		{"ini-new-names-win", "p.ini", "[g]\nold ansible_ssh_host=10.0.0.5 ansible_host=10.0.0.6 ansible_ssh_port=2201 ansible_port=2202\n", "old", "10.0.0.6", 2202},
		{"ini-dash-name-with-host", "p.ini", "[g]\n-web ansible_host=10.0.0.1\n", "-web", "10.0.0.1", 0},
		{"ini-ipv6-ansible-host", "p.ini", "[g]\nv6 ansible_host=2001:db8::1\n", "v6", "2001:db8::1", 0},
		{"yaml-host-port", "p.yml", "all:\n  hosts:\n    web1:2222:\n", "web1", "web1", 2222},
		{"yaml-var-wins", "p.yml", "all:\n  hosts:\n    web1:2222:\n      ansible_port: 2200\n", "web1", "web1", 2200},
		{"plain-host-port", "p.txt", "web1:2222\n", "web1:2222", "web1", 2222},
		{"plain-ipv6-port", "p.txt", "[::1]:2222\n", "[::1]:2222", "::1", 2222},
		{"plain-ipv6-bare", "p.txt", "::1\n", "::1", "::1", 0},
	}
	for _, tc := range tests {
		inv := parse(t, tc.file, tc.content)
		hs, err := inv.Select(tc.host)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if hs[0].Addr != tc.addr || hs[0].Port != tc.port {
			t.Errorf("%s: addr %q port %d, want %q %d", tc.name, hs[0].Addr, hs[0].Port, tc.addr, tc.port)
		}
	}
}

func TestPlainList(t *testing.T) {
	t.Parallel()
	inv := load(t, "testdata/hosts.txt")
	got := fmt.Sprintf("%+v", inv.Hosts())
	want := "[{Name:web1.corp.test Addr:web1.corp.test Port:0 User: Jump: Groups:[ungrouped] Vars:map[]} " +
		"{Name:web2.corp.test:2222 Addr:web2.corp.test Port:2222 User:alice Jump: Groups:[ungrouped] Vars:map[ansible_user:alice]} " +
		"{Name:web2.corp.test:2223 Addr:web2.corp.test Port:2223 User: Jump: Groups:[ungrouped] Vars:map[]} " +
		"{Name:[2001:db8::7]:22 Addr:2001:db8::7 Port:22 User: Jump: Groups:[ungrouped] Vars:map[]} " +
		"{Name:192.0.2.9 Addr:192.0.2.9 Port:0 User: Jump: Groups:[ungrouped] Vars:map[]}]"
	if got != want {
		t.Errorf("plain list:\n%s\nwant\n%s", got, want)
	}
}

func TestFormatDetection(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, file, content, want string }{
		{"ini-sections", "inv", "[web]\nweb1\n", "web1"},
		{"ini-vars-no-section", "inv", "web1 ansible_port=2222\n", "web1"},
		{"yaml-by-content", "inv", "# fleet\nall:\n  hosts:\n    web1:\n", "web1"},
		{"yaml-document-start", "inv", "---\nall:\n  hosts:\n    web1:\n", "web1"},
		{"json-by-content", "inv", `{"all": {"hosts": {"web1": null}}}`, "web1"},
		{"json-by-extension", "inv.json", `{"web": {"hosts": {"web1": {}}}}`, "web1"},
		{"plain", "inv", "# hosts\nweb1\n", "web1"},
		{"plain-ipv6-ending-in-colon", "inv", "fe80::\n", "fe80::"},
		{"ini-by-extension-names-without-port", "inv.ini", "web1:2222\n", "web1"},
		{"plain-with-user-port", "inv", "bob@web1:22\n", "web1:22"},
		{"yaml-hosts-string", "inv.yml", "web:\n  hosts: web1\n", "web1"},
		{"yaml-children-string", "inv.yml", "all:\n  children: web\nweb:\n  hosts:\n    web1:\n", "web1"},
		{"yml-extension", "inv.yml", "web:\n  hosts:\n    web1:\n", "web1"},
		{"empty-yaml", "inv.yml", "", ""},
		{"empty-ini", "inv", "# nothing yet\n", ""},
	}
	for _, tc := range tests {
		inv := parse(t, tc.file, tc.content)
		var got []string
		for _, h := range inv.Hosts() {
			got = append(got, h.Name)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: hosts %v, want %s", tc.name, got, tc.want)
		}
	}
}

func TestJump(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, vars, want string }{
		{"proxyjump", `ansible_ssh_common_args='-o ProxyJump=ops@bastion.corp.test'`, "ops@bastion.corp.test"},
		{"proxyjump-space", `ansible_ssh_common_args='-o "ProxyJump ops@bastion:2200"'`, "ops@bastion:2200"},
		{"proxyjump-glued", `ansible_ssh_common_args=-oProxyJump=bastion`, "bastion"},
		{"proxyjump-case", `ansible_ssh_common_args='-o proxyjump=bastion'`, "bastion"},
		{"proxyjump-chain", `ansible_ssh_common_args='-o ProxyJump=a@outer,b@inner:2200'`, "a@outer,b@inner:2200"},
		{"proxyjump-uri", `ansible_ssh_common_args='-o ProxyJump=ssh://ops@bastion:2200'`, "ssh://ops@bastion:2200"},
		{"proxyjump-none", `ansible_ssh_common_args='-o ProxyJump=none'`, "none"},
		{"proxycommand-none", `ansible_ssh_common_args='-o ProxyCommand=none -J later'`, "none"},
		{"dash-j", `ansible_ssh_common_args='-J ops@bastion'`, "ops@bastion"},
		{"dash-j-glued", `ansible_ssh_common_args=-Jops@bastion`, "ops@bastion"},
		{"proxycommand", `ansible_ssh_common_args='-o ProxyCommand="ssh -W %h:%p -q ops@bastion"'`, "ops@bastion"},
		{"proxycommand-port-user", `ansible_ssh_common_args='-o ProxyCommand="ssh -q -p 2200 -l ops -W %h:%p bastion"'`, "ops@bastion:2200"},
		{"proxycommand-path-and-j", `ansible_ssh_common_args='-o ProxyCommand="/usr/bin/ssh -J a@outer -W [%h]:%p b@inner"'`, "a@outer,b@inner"},
		{"proxycommand-ipv6", `ansible_ssh_common_args='-o ProxyCommand="ssh -W %h:%p -p 2200 2001:db8::9"'`, "[2001:db8::9]:2200"},
		{"bundled-flags", `ansible_ssh_common_args='-qJ ops@bastion'`, "ops@bastion"},
		{"bundled-flags-glued", `ansible_ssh_common_args=-CqJops@bastion`, "ops@bastion"},
		{"bundled-flag-before-other-option", `ansible_ssh_common_args='-qi key -J b'`, "b"},
		{"proxycommand-bundled", `ansible_ssh_common_args='-o ProxyCommand="ssh -qW %h:%p ops@bastion"'`, "ops@bastion"},
		{"proxycommand-option-after-destination", `ansible_ssh_common_args='-o ProxyCommand="ssh -W %h:%p bastion -p 2200 -l ops"'`, "ops@bastion:2200"},
		{"proxycommand-first-port-wins", `ansible_ssh_common_args='-o ProxyCommand="ssh -p 2200 -W %h:%p -o Port=2300 bastion"'`, "bastion:2200"},
		{"proxycommand-double-dash", `ansible_ssh_common_args='-o ProxyCommand="ssh -W %h:%p -- ops@bastion"'`, "ops@bastion"},
		{"other-options-ignored", `ansible_ssh_common_args='-C -o StrictHostKeyChecking=accept-new -i ~/.ssh/k -o ProxyJump=b'`, "b"},
		{"extra-args", `ansible_ssh_extra_args='-J ops@bastion'`, "ops@bastion"},
		{"common-before-extra", `ansible_ssh_common_args='-J first' ansible_ssh_extra_args='-J second'`, "first"},
		{"first-option-wins", `ansible_ssh_common_args='-J first -o ProxyJump=second'`, "first"},
		{"no-jump-in-common", `ansible_ssh_common_args='-C' ansible_ssh_extra_args='-J x'`, "x"},
	}
	for _, tc := range tests {
		inv := parse(t, "j.ini", "[g]\nh "+tc.vars+"\n")
		hs, _ := inv.Select("h")
		if hs[0].Jump != tc.want {
			t.Errorf("%s: Jump = %q, want %q", tc.name, hs[0].Jump, tc.want)
		}
	}
	// From [g:vars] (no shell quoting there: the value is the rest of
	// the line, one level of quotes removed) and from YAML.
	inv := parse(t, "j.ini", "[g]\nh\n[g:vars]\nansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p -q ops@bastion\"'\n")
	if hs, _ := inv.Select("h"); hs[0].Jump != "ops@bastion" {
		t.Errorf("[g:vars] jump = %q", hs[0].Jump)
	}
	inv = parse(t, "j.yml", "g:\n  hosts:\n    h:\n  vars:\n    ansible_ssh_common_args: -J ops@bastion\n")
	if hs, _ := inv.Select("h"); hs[0].Jump != "ops@bastion" {
		t.Errorf("YAML jump = %q", hs[0].Jump)
	}
}

// TestPrecedence checks variable precedence beyond the fleet: sibling
// groups apply in name order, ansible_group_priority reorders them, the
// deepest path decides a group's depth, [all:vars] is weakest, and a host
// written twice keeps both lines' variables, the later winning.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, content, want string }{
		{"siblings-by-name", "[b]\nh\n[a]\nh\n[a:vars]\nx=a\n[b:vars]\nx=b\n", "b"},
		{"group-priority", "[b]\nh\n[a]\nh\n[a:vars]\nx=a\nansible_group_priority=10\n[b:vars]\nx=b\n", "a"},
		{"deeper-wins", "[top:children]\nmid\n[mid:children]\nleaf\n[leaf]\nh\n[top:vars]\nx=top\n[mid:vars]\nx=mid\n[other]\nh\n[other:vars]\nx=other\n", "mid"},
		{"all-weakest", "[all:vars]\nx=all\n[g]\nh\n[g:vars]\nx=g\n", "g"},
		{"all-vars-before-hosts", "[all:vars]\nx=all\n[g]\nh\n", "all"},
		{"host-twice-later-wins", "[a]\nh x=1 y=1\n[b]\nh x=2\n", "2"},
		{"host-beats-group", "[g]\nh x=host\n[g:vars]\nx=group\n", "host"},
		{"vars-section-twice", "[g]\nh\n[g:vars]\nx=1\n[g:vars]\nx=2\n", "2"},
		{"vars-value-spaces", "[g]\nh\n[g:vars]\nx = a b  \n", "a b"},
		{"vars-value-hash-kept", "[g]\nh\n[g:vars]\nx=a#b\n", "a#b"},
		{"host-line-comment", "[g]\nh x=a #comment\n", "a"},
		{"host-line-hash-in-word", "[g]\nh x=a#b\n", "a"},
		{"host-line-quoted-hash", "[g]\nh x=\"'03#pa33'\"\n", "03#pa33"},
		{"vars-literal-comment", "[g]\nh\n[g:vars]\nx=8080 # the port\n", "8080"},
		{"vars-bool-comment", "[g]\nh\n[g:vars]\nx = True # java\n", "True"},
		{"vars-quoted-comment", "[g]\nh\n[g:vars]\nx='a # b' # c\n", "a # b"},
		{"vars-word-comment-kept", "[g]\nh\n[g:vars]\nx=foo # c\n", "foo # c"},
	}
	for _, tc := range tests {
		inv := parse(t, "p.ini", tc.content)
		hs, err := inv.Select("h")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := hs[0].Vars["x"]; got != tc.want {
			t.Errorf("%s: x = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestGroupsMembership: children may name groups declared later, empty
// or not, and ungrouped holds only hosts in no other group.
func TestGroupsMembership(t *testing.T) {
	t.Parallel()
	inv := parse(t, "g.ini", "h1\nh2\n[usa:children]\nsouth\nnorth\n[south]\nh2\nh3\n[all]\nh4\n[north]\n")
	if got := strings.Join(inv.Groups(), " "); got != "all ungrouped usa south north" {
		t.Errorf("groups = %s", got)
	}
	for pattern, want := range map[string]string{
		"ungrouped": "h1 h4",
		"usa":       "h2 h3",
		"all":       "h1 h2 h3 h4",
	} {
		hs, err := inv.Select(pattern)
		if err != nil {
			t.Errorf("%s: %v", pattern, err)
			continue
		}
		if got := names(hs); got != want {
			t.Errorf("%s = %s, want %s", pattern, got, want)
		}
	}
	if _, err := inv.Select("north"); err == nil || !strings.Contains(err.Error(), `pattern "north" selects no hosts`) {
		t.Errorf("empty group: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	bomb := "all:\n  vars:\n    a: &a [x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 0, "a"; i < 8; i++ {
		cur := fmt.Sprintf("b%d", i)
		bomb += fmt.Sprintf("    %s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", cur, cur, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = cur
	}
	tests := []struct{ name, file, content, want string }{
		// INI
		{"unterminated-section", "bad.ini", "[web\nweb1\n", `^inventory: bad.ini:1: unterminated section header "\[web": missing '\]'$`},
		{"section-with-space", "bad.ini", "h\n[web servers]\n", `^inventory: bad.ini:2: section header "\[web servers\]": a group name has no spaces$`},
		{"section-empty", "bad.ini", "[]\n", `bad.ini:1: section header "\[\]" has no group name`},
		{"section-unknown-type", "bad.ini", "[web:child]\nh\n", `bad.ini:1: section \[web:child\] has unknown type "child"; the types are \[web\], \[web:children\] and \[web:vars\]`},
		{"section-bad", "bad.ini", "[web:vars:x]\n", `bad.ini:1: bad section header "\[web:vars:x\]": want \[group\], \[group:children\] or \[group:vars\]`},
		{"range-letters-and-digits", "bad.ini", "[g]\nweb[1:a]\n", `bad.ini:2: bad range \[1:a\] in "web\[1:a\]": begin and end must both be numbers or both single letters`},
		{"range-backwards", "bad.ini", "[g]\nweb[5:1]\n", `bad.ini:2: bad range \[5:1\] in "web\[5:1\]": begin 5 is greater than end 1`},
		{"range-letters-backwards", "bad.ini", "[g]\ndb[c:a]\n", `begin "c" comes after end "a"`},
		{"range-widths", "bad.ini", "[g]\nweb[01:100]\n", `zero-padded begin "01" and end "100" must have the same width`},
		{"range-step-zero", "bad.ini", "[g]\nweb[1:5:0]\n", `step "0" is not a positive number`},
		{"range-no-end", "bad.ini", "[g]\nweb[1:]\n", `bad range \[1:\] in "web\[1:\]": no end`},
		{"range-one-bound", "bad.ini", "[g]\nweb[1]\n", `want \[begin:end\] or \[begin:end:step\]`},
		{"range-unclosed", "bad.ini", "[g]\nweb[1:5\n", `bad.ini:2: bad range in "web\[1:5": '\[' without '\]'`},
		{"range-unopened", "bad.ini", "[g]\nweb1:5]\n", `bad.ini:2: host "web1:5\]": port "5\]" is not a number`},
		{"range-too-big", "bad.ini", "[g]\nweb[0:99999999]\n", `bad.ini:2: range "web\[0:99999999\]" makes more than 1048576 hosts`},
		{"range-product-too-big", "bad.ini", "[g]\nw[0:9999]x[0:9999]\n", `makes more than 1048576 hosts`},
		{"range-number-too-long", "bad.ini", "[g]\nweb[0:9999999999999999999]\n", `must both be numbers`},
		{"cycle", "bad.ini", "[a:children]\nb\n[b:children]\nc\n[c:children]\na\n", `^inventory: bad.ini:6: groups form a cycle: a > b > c > a$`},
		{"self-child", "bad.ini", "[a:children]\na\n", `bad.ini:2: group "a" lists itself as a child`},
		{"all-as-child", "bad.ini", "[a:children]\nall\n", `bad.ini:2: group "a" cannot have all as a child`},
		{"children-bad-line", "bad.ini", "[a:children]\nb c\n", `bad.ini:2: \[a:children\]: want one group name per line, got "b c"`},
		{"vars-no-equals", "bad.ini", "[g]\nh\n[g:vars]\nntp\n", `bad.ini:4: \[g:vars\]: want key=value, got "ntp"`},
		{"vars-undefined-group", "bad.ini", "[g]\nh\n[ghost:vars]\nx=1\n", `^inventory: bad.ini:3: section \[ghost:vars\] is for group "ghost", which is never declared; add a \[ghost\] or \[ghost:children\] section$`},
		{"child-undeclared", "bad.ini", "[usa:children]\nsouth\nnorth\n[south]\nh\n", `^inventory: bad.ini:3: section \[usa:children\] names group "north", which is never declared; add a \[north\] section \(it may be empty\)$`},
		{"child-with-vars-only", "bad.ini", "[north:vars]\nx=1\n[usa:children]\nnorth\n", `bad.ini:4: section \[usa:children\] names group "north", which is never declared`},
		{"host-trailing-colon", "bad.ini", "[g]\nweb1:\n", `bad.ini:2: host "web1:" ends in ':'; a port follows the colon`},
		{"yaml-marker-in-ini", "bad.ini", "[g]\nh\n---\n", `bad.ini:3: a line "---" starts a YAML document`},
		{"host-var-no-equals", "bad.ini", "[g]\nh port\n", `bad.ini:2: host h: want key=value after the host name, got "port"`},
		{"host-var-empty-key", "bad.ini", "[g]\nh =1\n", `want key=value after the host name, got "=1"`},
		{"host-unterminated-quote", "bad.ini", "[g]\nh x='a b\n", `^inventory: bad.ini:2: unterminated ' quote$`},
		{"host-trailing-backslash", "bad.ini", "[g]\nh x=a\\\n", `^inventory: bad.ini:2: a \\ ends the line with nothing to escape$`},
		{"host-unterminated-dquote", "bad.ini", "[g]\nh x=\"a b\n", `unterminated " quote`},
		{"host-port-range", "bad.ini", "[g]\nh:70000\n", `bad.ini:2: host "h:70000": port 70000 is out of range \(1-65535\)`},
		{"host-port-letters", "bad.ini", "[g]\nh:ssh\n", `host "h:ssh": port "ssh" is not a number`},
		{"host-two-colons", "bad.ini", "[g]\nh:22:23\n", `has more than one port separator`},
		{"host-user-in-ini", "bad.ini", "[g]\nbob@h ansible_port=22\n", `bad.ini:2: host "bob@h" has a user; set ansible_user=bob instead`},
		{"ansible-port-bad", "bad.ini", "[g]\nh ansible_port=abc\n", `bad.ini:2: host h: ansible_port "abc" is not a port \(1-65535\)`},
		{"ansible-port-zero", "bad.ini", "[g]\nh\n[g:vars]\nansible_port=0\n", `bad.ini:4: host h: ansible_port "0" is not a port`},
		{"ansible-host-port", "bad.ini", "[g]\nh ansible_host=10.0.0.1:2222\n", `host h: ansible_host "10.0.0.1:2222" holds a port; set ansible_port=2222 and ansible_host=10.0.0.1`},
		{"ansible-host-empty", "bad.ini", "[g]\nh ansible_host=\n", `ansible_host "" is not a host name or address`},
		{"ansible-host-template", "bad.ini", "[g]\nh ansible_host=\"{{ lookup('env','X') }}\"\n", `host h: ansible_host "\{\{ lookup\('env','X'\) \}\}" is a template; templates are not evaluated`},
		{"ansible-host-dash", "bad.ini", "[g]\nh ansible_host=-oProxyCommand=x\n", `host h: ansible_host "-oProxyCommand=x" starts with '-'`},
		{"host-name-dash", "bad.ini", "[g]\n-oProxyCommand=x\n", `^inventory: bad.ini:2: host -oProxyCommand=x: an address may not start with '-'; set ansible_host$`},
		{"host-name-dash-with-host", "ok.ini", "[g]\n-web ansible_host=-x\n", `ansible_host "-x" starts with '-'`},
		{"ansible-user-dash", "bad.ini", "[g]\nh ansible_user=-oProxyCommand=x\n", `ansible_user "-oProxyCommand=x" is not a user name`},
		{"jump-dash", "bad.ini", "[g]\nh ansible_ssh_common_args='-J -oProxyCommand=x'\n", `jump host "-oProxyCommand=x": starts with '-'`},
		{"ansible-user-bad", "bad.ini", "[g]\nh ansible_user='a b'\n", `ansible_user "a b" is not a user name`},
		{"group-priority-bad", "bad.ini", "[g]\nh\n[g:vars]\nansible_group_priority=high\n", `bad.ini:4: group "g": ansible_group_priority "high" is not an integer`},
		{"proxycommand-nc", "bad.ini", "[g]\nh ansible_ssh_common_args='-o ProxyCommand=\"nc -X 5 -x proxy:1080 %h %p\"'\n", `bad.ini:2: host h: ansible_ssh_common_args: ProxyCommand "nc …" is not supported: only ssh -W %h:%p`},
		{"proxycommand-remote-nc", "bad.ini", "[g]\nh ansible_ssh_common_args='-o ProxyCommand=\"ssh bastion nc %h %p\"'\n", `ProxyCommand "ssh …" is not supported`},
		{"proxycommand-empty", "bad.ini", "[g]\nh ansible_ssh_common_args='-o ProxyCommand='\n", `ansible_ssh_common_args: empty ProxyCommand`},
		{"proxycommand-blank", "bad.ini", "[g]\nh ansible_ssh_common_args='-o \"ProxyCommand  \"'\n", `ansible_ssh_common_args: empty ProxyCommand`},
		{"proxycommand-secret-not-shown", "bad.ini", "[g]\nh ansible_ssh_common_args='-o ProxyCommand=\"sshpass -p hunter2 ssh -W %h:%p b\"'\n", `^inventory: bad.ini:2: host h: ansible_ssh_common_args: ProxyCommand "sshpass …" is not supported`},
		{"proxycommand-two-words", "bad.ini", "[g]\nh ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p bastion true\"'\n", `ProxyCommand "ssh …" is not supported`},
		{"proxycommand-w-other-target", "bad.ini", "[g]\nh ansible_ssh_common_args='-o ProxyCommand=\"ssh -W other:22 bastion\"'\n", `ProxyCommand "ssh …" is not supported`},
		{"proxycommand-nested", "bad.ini", "[g]\nh ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p -o ProxyCommand=x bastion\"'\n", `ProxyCommand "ssh …" is not supported`},
		{"proxycommand-bastion-named-none", "bad.ini", "[g]\nh ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p none\"'\n", `a bastion named "none" cannot be a jump`},
		{"proxycommand-no-w", "bad.ini", "[g]\nh ansible_ssh_common_args='-o ProxyCommand=\"ssh bastion\"'\n", `is not supported`},
		{"jump-no-arg", "bad.ini", "[g]\nh ansible_ssh_common_args=-J\n", `ansible_ssh_common_args: -J needs an argument`},
		{"jump-token", "bad.ini", "[g]\nh ansible_ssh_common_args='-J %r@bastion'\n", `jump host "%r@bastion" holds a % token`},
		{"jump-bad-port", "bad.ini", "[g]\nh ansible_ssh_extra_args='-o ProxyJump=b:99999'\n", `host h: ansible_ssh_extra_args: jump host "b:99999": host "b:99999": port 99999 is out of range`},
		{"script", "inv.py", "#!/usr/bin/env python3\nprint('{}')\n", `^inventory: inv.py:1: starts with #!: inventory scripts are not run`},
		{"nul", "bad.ini", "[g]\nh\x00\n", `bad.ini: holds a NUL byte`},
		// YAML
		{"yaml-hosts-list", "bad.yml", "all:\n  hosts:\n    - web1\n    - web2\n", `^inventory: bad.yml:3: group "all": hosts is a list; write a mapping, one host per key`},
		{"yaml-unknown-key", "bad.yml", "all:\n  host:\n    web1:\n", `bad.yml:2: group "all": unknown key "host"; a group has hosts, children and vars`},
		{"yaml-unknown-key-group", "bad.yml", "all:\n  webservers:\n    hosts:\n      web1:\n", `unknown key "webservers"; a group has hosts, children and vars \(is "webservers" meant to be under children\?\)`},
		{"yaml-cycle", "bad.yml", "all:\n  children:\n    a:\n      children:\n        b:\n    b:\n      children:\n        a:\n", `bad.yml:8: groups form a cycle: a > b > a`},
		{"yaml-syntax", "bad.yml", "all:\n  hosts: [\n", `^inventory: bad.yml:\d+: did not find expected node content`},
		{"yaml-tab", "bad.yml", "all:\n\thosts:\n", `^inventory: bad.yml:2: found character that cannot start any token`},
		{"yaml-duplicate-host", "bad.yml", "all:\n  hosts:\n    a:\n    b:\n    a:\n", `bad.yml:5: hosts of "all": duplicate key "a" \(first at line 3\)`},
		{"yaml-duplicate-group-key", "bad.yml", "all:\n  vars:\n    x: 1\n  vars:\n    x: 2\n", `bad.yml:4: group "all": duplicate key "vars" \(first at line 2\)`},
		{"yaml-top-list", "bad.yml", "- web1\n- web2\n", `bad.yml:1: want a mapping of groups \(all: \{hosts: …, children: …, vars: …\}\), got a list`},
		{"yaml-group-scalar", "bad.yml", "all: web1\n", `bad.yml:1: group "all": want a mapping with hosts, children or vars, got "web1"`},
		{"yaml-host-scalar", "bad.yml", "all:\n  hosts:\n    web1: 22\n", `bad.yml:3: host web1: want a mapping of variables, got "22"`},
		{"yaml-vars-list", "bad.yml", "all:\n  vars: [1, 2]\n", `bad.yml:2: vars of group "all": want a mapping, got a list`},
		{"yaml-children-list", "bad.yml", "all:\n  children: [a]\n", `children is a list; write a mapping, one group per key`},
		{"yaml-range", "bad.yml", "all:\n  hosts:\n    web[1:x]:\n", `bad.yml:3: bad range \[1:x\]`},
		{"yaml-user", "bad.yml", "all:\n  hosts:\n    bob@web1:\n", `bad.yml:3: host "bob@web1" has a user; set ansible_user=bob instead`},
		{"yaml-two-documents", "bad.yml", "all:\n---\nall:\n", `bad.yml:2: a second YAML document; an inventory is one document`},
		{"yaml-script-output", "bad.json", `{"_meta": {"hostvars": {}}, "all": {"hosts": ["a"]}}`, `bad.json:1: _meta is an inventory script's output, which is not read`},
		{"yaml-plugin-config", "bad.yml", "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n", `bad.yml:1: plugin: is an inventory plugin's configuration, which is not run`},
		{"yaml-null-host", "bad.yml", "all:\n  hosts:\n    ~:\n", `bad.yml:3: hosts of "all": want a name as key, got null`},
		{"yaml-key-not-name", "bad.yml", "all:\n  hosts:\n    [a, b]: x\n", `bad.yml:3: hosts of "all": want a name as key, got a list`},
		{"yaml-group-space", "bad.yml", "\"web servers\":\n  hosts:\n    a:\n", `bad.yml:1: group name "web servers" holds a space`},
		{"yaml-host-control", "bad.yml", "all:\n  hosts:\n    \"a\\nb\":\n", `bad.yml:3: host name "a\\nb" holds a space or control character`},
		{"yaml-all-child", "bad.yml", "web:\n  children:\n    all:\n", `bad.yml:3: group "web" cannot have all as a child`},
		{"yaml-alias-bomb", "bad.yml", bomb, `bad.yml:.*(too many nodes|excessive aliasing)`},
		{"yaml-port-var-bad", "bad.yml", "all:\n  hosts:\n    h:\n      ansible_port: [22]\n", `bad.yml:4: host h: ansible_port "\[22\]" is not a port`},
		// plain
		{"plain-double-user", "bad.txt", "a@b@c\n", `bad.txt:1: host "a@b@c": want user@host`},
		{"plain-empty-user", "bad.txt", "@host\n", `bad.txt:1: host "@host": want user@host`},
		{"plain-bad-port", "bad.txt", "host:0\n", `bad.txt:1: host "host:0": port 0 is out of range`},
		{"plain-extra-word", "bad.txt", "web1\nweb2 web3\n", `^inventory: bad.txt:2: host web2: want key=value after the host name, got "web3" \(one host per line\)$`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inv, err := inventory.Parse(tc.file, []byte(tc.content))
			if err == nil {
				t.Fatalf("parsed: %+v", inv.Hosts())
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("error:\n%v\nwant match for\n%s", err, tc.want)
			}
			var pe *inventory.ParseError
			if !errors.As(err, &pe) || pe.File != tc.file {
				t.Errorf("error %v is not a *ParseError naming %s", err, tc.file)
			}
		})
	}
}

// TestErrorsHideProxyCommandArgs: a ProxyCommand may carry a password
// (sshpass -p), and so may a host line; an error about one shows only the
// command's program, and never the line.
func TestErrorsHideProxyCommandArgs(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{
		`sshpass -p hunter2 ssh -W %h:%p b`,
		`ssh -W %h:%p -o IdentityAgent=hunter2 b extra`,
		`ssh -W %h:%p hunter2@b:0`,
		`ssh -W %h:%p -i 'hunter2`,
		`ssh -W %h:%p -l`,
	} {
		src := "[g]\nh ansible_ssh_common_args='-o ProxyCommand=\"" + cmd + "\"'\n"
		_, err := inventory.Parse("p.ini", []byte(src+"k ansible_password='hunter2\n"))
		if err == nil {
			t.Errorf("%s: parsed", cmd)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the secret: %v", cmd, err)
		}
	}
	for _, src := range []string{"[g]\nk ansible_password='hunter2\n", "[g]\nk ansible_password=hunter2\\\n", "[g]\nk ansible_password=hunter2 oops\n"} {
		_, err := inventory.Parse("p.ini", []byte(src))
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error %v", src, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := inventory.Load(filepath.Join(dir, "none.ini")); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "inventory: stat ") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := inventory.Load(dir); err == nil || !strings.Contains(err.Error(), "is a directory; give one inventory file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := inventory.Load("/dev/null"); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("device: %v", err)
	}
}
