package inventory_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/client/inventory"
)

// FuzzParseINI: the INI parser never panics, fails only with a
// *ParseError, and what it accepts is a consistent inventory: every host
// once, named, selectable by its own name, and all selects them all in
// order.
func FuzzParseINI(f *testing.F) {
	for _, p := range []string{"testdata/fleet.ini", "testdata/hosts.txt"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	for _, s := range []string{
		"[web\n", "[a:children]\nb\n[b:children]\na\n", "web[01:03]:22 x='a b' # c\n",
		"[g:vars]\nk=v\n[g]\nh\n", "[::1]:22\n[a:c]x\n", "h ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p b\"'\n",
		"w[0:3][a:b]\n", "h\\ x\n", "[g:children]\nungrouped\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		checkParsed(t, src, inventory.FormatINI)
	})
}

// FuzzParseYAML: the same for the YAML parser.
func FuzzParseYAML(f *testing.F) {
	data, err := os.ReadFile("testdata/fleet.yml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data))
	for _, s := range []string{
		"all:\n  hosts:\n    - a\n", "a: &x {hosts: {h: }}\nb:\n  children:\n    a: *x\n", "{all: {vars: {k: [1, {a: b}]}}}",
		"all:\n  children:\n    a:\n      children:\n        a:\n", "g:\n  hosts: web[1:3]:22\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		checkParsed(t, src, inventory.FormatYAML)
	})
}

func checkParsed(t *testing.T, src string, format inventory.Format) {
	inv, err := inventory.ParseFormat("fuzz", []byte(src), format)
	if err != nil {
		var pe *inventory.ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("error is not a *ParseError: %v", err)
		}
		return
	}
	hosts := inv.Hosts()
	seen := map[string]bool{}
	for _, h := range hosts {
		if h.Name == "" || h.Addr == "" || seen[h.Name] {
			t.Fatalf("bad or repeated host %+v", h)
		}
		seen[h.Name] = true
		if h.Port < 0 || h.Port > 65535 {
			t.Fatalf("host %s: port %d", h.Name, h.Port)
		}
	}
	if len(hosts) == 0 {
		return
	}
	all, err := inv.Select("all")
	if err != nil || len(all) != len(hosts) {
		t.Fatalf("Select(all) = %d hosts, %v; want %d", len(all), err, len(hosts))
	}
	for i := range all {
		if all[i].Name != hosts[i].Name {
			t.Fatalf("Select(all) order differs at %d: %s, %s", i, all[i].Name, hosts[i].Name)
		}
	}
	for _, h := range hosts[:min(len(hosts), 20)] {
		got, err := inv.Select(h.Name)
		if err != nil || len(got) == 0 {
			t.Fatalf("Select(%q): %v", h.Name, err)
		}
	}
}

// FuzzSelect: any pattern gives hosts of the inventory, in inventory
// order and each once, or an error; never a panic. (@file terms are left
// out: they read files.)
func FuzzSelect(f *testing.F) {
	inv, err := inventory.Load("testdata/fleet.ini")
	if err != nil {
		f.Fatal(err)
	}
	order := map[string]int{}
	for i, h := range inv.Hosts() {
		order[h.Name] = i
	}
	for _, s := range []string{"all", "web:&db", "!web,db", "~www0[12]", "pg-[!a]*", "web[0]", "~(", ":&!", "[::1]:22", "a:22:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		if strings.Contains(pattern, "@") {
			return
		}
		hs, err := inv.Select(pattern)
		if err != nil {
			if len(hs) != 0 {
				t.Fatalf("Select(%q): hosts and an error", pattern)
			}
			return
		}
		last := -1
		for _, h := range hs {
			i, ok := order[h.Name]
			if !ok || i <= last {
				t.Fatalf("Select(%q): %s out of order or unknown", pattern, h.Name)
			}
			last = i
		}
	})
}
