package inventory_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/client/inventory"
)

func names(hs []inventory.Host) string {
	var out []string
	for _, h := range hs {
		out = append(out, strings.TrimSuffix(h.Name, ".corp.test"))
	}
	return strings.Join(out, " ")
}

func load(t *testing.T, path string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// writeFile writes a file in a fresh directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSelect(t *testing.T) {
	t.Parallel()
	limit := writeFile(t, "failed.txt", "# hosts that failed\nwww02.corp.test\n\npg-c.corp.test\n")
	paris := writeFile(t, "paris.txt", "paris\n")
	tests := []struct {
		name, pattern, want string
	}{
		{"all", "all", "relay www01 www02 www03 cache pg-a pg-b pg-c job1 job5 job9 gw deep"},
		{"star", "*", "relay www01 www02 www03 cache pg-a pg-b pg-c job1 job5 job9 gw deep"},
		{"group", "web", "www01 www02 www03 cache"},
		{"ungrouped", "ungrouped", "relay"},
		{"group-of-groups", "france", "www01 www02 pg-a pg-b"},
		{"host", "gw", "gw"},
		{"dotted-host", "pg-c.corp.test", "pg-c"},
		{"union-colon", "web:db", "www01 www02 www03 cache pg-a pg-b pg-c"},
		{"union-comma", "web,db", "www01 www02 www03 cache pg-a pg-b pg-c"},
		{"union-in-inventory-order", "db,web", "www01 www02 www03 cache pg-a pg-b pg-c"},
		{"union-hosts-inventory-order", "cache.corp.test:relay.corp.test", "relay cache"},
		{"union-overlap-once", "web:web:cache.corp.test", "www01 www02 www03 cache"},
		{"intersection", "web:&db", "cache"},
		{"intersection-group-of-groups", "web:&europe", "www01 www02"},
		{"intersection-two", "paris:lyon:&db", "pg-a pg-b"},
		{"intersection-alone-means-all", "&db", "cache pg-a pg-b pg-c"},
		{"exclusion", "web:!europe", "www03 cache"},
		{"exclusion-alone-means-all", "!web:!db:!europe", "relay job1 job5 job9 gw deep"},
		{"exclusion-host", "web,!cache.corp.test", "www01 www02 www03"},
		{"order-unions-before-exclusions", "web:!paris:db", "www02 www03 cache pg-b pg-c"},
		{"order-intersections-before-exclusions", "!paris:web:&france", "www02"},
		{"glob-star", "www0*", "www01 www02 www03"},
		{"glob-domain", "*.corp.test", "relay www01 www02 www03 cache pg-a pg-b pg-c job1 job5 job9 deep"},
		{"glob-question", "job?.corp.test", "job1 job5 job9"},
		{"glob-class", "pg-[ab]*", "pg-a pg-b"},
		{"glob-negated-class", "pg-[!a]*", "pg-b pg-c"},
		{"glob-matches-groups", "fr*", "www01 www02 pg-a pg-b"},
		{"glob-groups-and-hosts", "*e*", "relay www01 www02 www03 cache pg-a pg-b pg-c job1 job5 job9 gw deep"},
		{"regex", "~www0[12]", "www01 www02"},
		{"regex-anchored-at-start", "~.*corp", "relay www01 www02 www03 cache pg-a pg-b pg-c job1 job5 job9 deep"},
		{"regex-alternation", `~(job[15]|gw)`, "job1 job5 gw"},
		{"regex-excluded", `web:!~www`, "cache"},
		{"limit-file", "@" + limit, "www02 pg-c"},
		{"limit-file-excluded", "web:!@" + limit, "www01 www03 cache"},
		{"limit-file-intersected", "web:&@" + limit, "www02"},
		{"limit-file-of-groups", "@" + paris, "www01 pg-a"},
		{"spaces-around-terms", " web , db ", "www01 www02 www03 cache pg-a pg-b pg-c"},
		{"spaces-separate", "web db:!paris", "www02 www03 cache pg-b pg-c"},
		{"empty-terms-skipped", "web::db,,", "www01 www02 www03 cache pg-a pg-b pg-c"},
	}
	inv := load(t, "testdata/fleet.ini")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs, err := inv.Select(tc.pattern)
			if err != nil {
				t.Fatalf("Select(%q): %v", tc.pattern, err)
			}
			if got := names(hs); got != tc.want {
				t.Errorf("Select(%q) = %s, want %s", tc.pattern, got, tc.want)
			}
		})
	}
}

// TestSelectPlainNames: a plain list names hosts as written, port
// included, and such a name or a bare IPv6 address is one pattern term.
func TestSelectPlainNames(t *testing.T) {
	t.Parallel()
	inv := load(t, "testdata/hosts.txt")
	tests := []struct{ pattern, want string }{
		{"web2.corp.test:2222", "web2.corp.test:2222"},
		{"[2001:db8::7]:22", "[2001:db8::7]:22"},
		{"web2*", "web2.corp.test:2222 web2.corp.test:2223"},
		{"web1.corp.test,web2.corp.test:2223", "web1.corp.test web2.corp.test:2223"},
		{"all:!web2.corp.test:2222", "web1.corp.test web2.corp.test:2223 [2001:db8::7]:22 192.0.2.9"},
		{"192.0.2.9", "192.0.2.9"},
	}
	for _, tc := range tests {
		hs, err := inv.Select(tc.pattern)
		if err != nil {
			t.Errorf("Select(%q): %v", tc.pattern, err)
			continue
		}
		var got []string
		for _, h := range hs {
			got = append(got, h.Name)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("Select(%q) = %v, want %s", tc.pattern, got, tc.want)
		}
	}
}

func TestSelectErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.txt")
	if err := os.WriteFile(stale, []byte("www01.corp.test\nwww99.corp.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, []byte("# none failed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nested := filepath.Join(dir, "nested.txt")
	if err := os.WriteFile(nested, []byte("web\n@"+stale+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, pattern, want string
		noMatch             bool
	}{
		{"typo-group", "webb", `^inventory: no group or host matches "webb"; did you mean web\? \(13 hosts; groups: all, ungrouped, web, db, batch, paris, lyon, france, europe, asia, gate, behind\)$`, true},
		{"typo-in-exclusion", "web:!wbe", `no group or host matches "wbe" in pattern "web:!wbe"; did you mean web\?`, true},
		{"typo-in-intersection", "web:&dbb", `no group or host matches "dbb" in pattern "web:&dbb"; did you mean db\?`, true},
		{"typo-host", "www1.corp.test", `no group or host matches "www1.corp.test"; did you mean www01.corp.test\?`, true},
		{"nothing-close", "zzzzzz", `^inventory: no group or host matches "zzzzzz" \(13 hosts; groups: `, true},
		{"glob-matches-nothing", "mail*", `no group or host matches "mail\*"`, true},
		{"regex-matches-nothing", "~corp", `no group or host matches "~corp"`, true},
		{"empty-intersection", "web:&batch", `^inventory: pattern "web:&batch" selects no hosts \(13 hosts; groups: `, true},
		{"empty-group", "asia", `pattern "asia" selects no hosts`, true},
		{"everything-excluded", "web:!all", `pattern "web:!all" selects no hosts`, true},
		{"empty", "", `^inventory: empty pattern; use all for every host$`, false},
		{"only-separators", ",:,", `pattern ",:," holds no group or host`, false},
		{"bare-operator", "web:!", `pattern "web:!": "!" needs a group or host after it`, false},
		{"bad-regex", "~(", `pattern "~\(": bad regex "\("`, false},
		{"regex-escaping-anchor", "~www)|(corp", `bad regex "www\)\|\(corp": error parsing regexp: unexpected \)`, false},
		{"subscript", "web[0]", `subscripts like web\[0\] are not supported`, false},
		{"subscript-slice", "web[0:2]", `subscripts like web\[0:2\] are not supported`, false},
		{"missing-limit-file", "@" + filepath.Join(dir, "nope.txt"), `^inventory: limit file: stat .*nope.txt: no such file or directory$`, false},
		{"limit-file-is-dir", "@" + dir, `limit file .* is not a regular file`, false},
		{"limit-file-empty", "@" + empty, `limit file .*empty.txt lists no hosts`, false},
		{"limit-file-stale-host", "@" + stale, `^inventory: .*stale.txt:2: no group or host matches "www99.corp.test" in pattern "@.*stale.txt"; did you mean www01.corp.test, www02.corp.test, www03.corp.test\?`, true},
		{"limit-file-nested", "@" + nested, `nested.txt:2: a limit file lists hosts or groups, one per line; got "@`, false},
		{"at-without-file", "@", `@ needs a file name`, false},
	}
	inv := load(t, "testdata/fleet.ini")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs, err := inv.Select(tc.pattern)
			if err == nil {
				t.Fatalf("Select(%q) = %s, want an error", tc.pattern, names(hs))
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("Select(%q) error:\n%v\nwant match for\n%s", tc.pattern, err, tc.want)
			}
			var nm *inventory.NoMatchError
			if errors.As(err, &nm) != tc.noMatch {
				t.Errorf("Select(%q): errors.As(*NoMatchError) = %v, want %v", tc.pattern, !tc.noMatch, tc.noMatch)
			}
		})
	}
}

// TestSelectReturnsCopies: a caller changing what Select returned does
// not change the inventory.
func TestSelectReturnsCopies(t *testing.T) {
	t.Parallel()
	inv := load(t, "testdata/fleet.ini")
	hs, err := inv.Select("gw")
	if err != nil {
		t.Fatal(err)
	}
	hs[0].Vars["ansible_host"] = "203.0.113.1"
	hs[0].Groups[0] = "changed"
	again, err := inv.Select("gw")
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Vars["ansible_host"] != "192.0.2.50" || again[0].Groups[0] != "gate" {
		t.Errorf("inventory changed through a returned host: %+v", again[0])
	}
}
