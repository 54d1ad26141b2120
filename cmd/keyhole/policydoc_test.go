package main

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/authz"
)

// docExample is one worked example of docs/policy.md: the Cedar blocks
// since the previous decision table, and the rows of that table.
type docExample struct {
	heading string
	blocks  []string
	rows    []docRow
}

type docRow struct {
	line  int
	cells []string // decision, user, role, action, resource, context, policies
}

// readPolicyDoc splits docs/policy.md into its examples, and returns the
// TOML blocks too.
func readPolicyDoc(t *testing.T) (examples []docExample, tomls []string) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cur docExample
	var fence string // language of the open fence, "" outside
	var block strings.Builder
	inTable := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case fence != "" && strings.HasPrefix(line, "```"):
			switch fence {
			case "cedar":
				cur.blocks = append(cur.blocks, block.String())
			case "toml":
				tomls = append(tomls, block.String())
			}
			fence = ""
		case fence != "":
			block.WriteString(line + "\n")
		case strings.HasPrefix(line, "```"):
			fence = strings.TrimPrefix(line, "```")
			if fence == "" {
				fence = "text"
			}
			block.Reset()
		case strings.HasPrefix(line, "#"):
			if len(cur.blocks) > 0 {
				t.Fatalf("docs/policy.md:%d: the cedar blocks of %q have no decision table", n, cur.heading)
			}
			cur.heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
		case strings.HasPrefix(line, "| decision |"):
			inTable = true
		case inTable && strings.HasPrefix(line, "|---"):
		case inTable && strings.HasPrefix(line, "|"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			if len(cells) != 7 {
				t.Fatalf("docs/policy.md:%d: a decision row needs 7 cells, has %d", n, len(cells))
			}
			cur.rows = append(cur.rows, docRow{line: n, cells: cells})
		case inTable:
			inTable = false
			if len(cur.blocks) == 0 {
				t.Fatalf("docs/policy.md:%d: a decision table with no cedar block before it", n)
			}
			examples = append(examples, cur)
			cur = docExample{heading: cur.heading}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cur.blocks) > 0 || inTable {
		t.Fatalf("docs/policy.md: the last example %q is not closed by a decision table and a blank line", cur.heading)
	}
	return examples, tomls
}

// TestPolicyDocExamples loads the policies of each worked example of
// docs/policy.md and checks every decision its table promises.
func TestPolicyDocExamples(t *testing.T) {
	t.Parallel()
	examples, _ := readPolicyDoc(t)
	var headings []string
	for _, ex := range examples {
		headings = append(headings, ex.heading)
	}
	// The examples the policy workflow promises operators.
	for _, want := range []string{"The on-call log reader", "A config inspector", "A service restarter, in office hours",
		"A deployment push into one directory", "Deny by source address", "A break-glass role",
		"Commands and their arguments", "Reading through hard links"} {
		if !slices.Contains(headings, want) {
			t.Errorf("docs/policy.md has no tested example %q (has %q)", want, headings)
		}
	}
	// Requests that got past earlier versions of the examples: each must
	// stay in its table as a denied row (and so be checked below).
	mustDeny := map[string][]string{
		"Commands and their arguments": {
			"/usr/bin/df args=-h,/,--output=source,--all",
			"/usr/bin/journalctl args=--vacuum-s=1K",
			"/usr/bin/journalctl args=--rot",
			"/usr/bin/journalctl args=--vacuum-time=1s",
		},
		"Reading through hard links": {"/srv/app/log/a.log nlink=2"},
	}
	for _, ex := range examples {
		for _, row := range ex.rows {
			if row.cells[0] == "deny" {
				mustDeny[ex.heading] = slices.DeleteFunc(mustDeny[ex.heading], func(s string) bool {
					return s == row.cells[4]+" "+row.cells[5]
				})
			}
		}
	}
	for heading, rows := range mustDeny {
		for _, r := range rows {
			t.Errorf("docs/policy.md, %q: no denied row for %s", heading, r)
		}
	}
	all := map[string][]byte{}
	for _, ex := range examples {
		files := map[string][]byte{}
		for i, b := range ex.blocks {
			name := strings.ReplaceAll(strings.ToLower(ex.heading), " ", "-") + "-" + strconv.Itoa(i) + ".cedar"
			files[name] = []byte(b)
			all[name] = []byte(b)
		}
		ps, err := authz.LoadFiles(files)
		if err != nil {
			t.Errorf("%s: the policies do not load:\n%v", ex.heading, err)
			continue
		}
		allowSeen, denySeen := false, false
		for _, row := range ex.rows {
			c := row.cells
			req := docRequest(t, row)
			d := ps.Decide(req)
			got := decisionWord(d)
			want := []string{}
			if c[6] != "-" {
				want = strings.Split(strings.ReplaceAll(c[6], " ", ""), ",")
			}
			if got != c[0] || !slices.Equal(sortedCopy(d.Policies), sortedCopy(want)) || len(d.Errors) > 0 {
				t.Errorf("docs/policy.md:%d (%s): %s: got %s by %q (errors %q), the text says %s by %q",
					row.line, ex.heading, describe(req), got, d.Policies, d.Errors, c[0], want)
			}
			allowSeen = allowSeen || c[0] == "allow"
			denySeen = denySeen || c[0] == "deny"
		}
		if !allowSeen || !denySeen {
			t.Errorf("%s: the table should show both an allowed and a denied request", ex.heading)
		}
	}
	// The ids are unique across the page, so the examples can be combined.
	if _, err := authz.LoadFiles(all); err != nil {
		t.Errorf("the examples together do not load:\n%v", err)
	}
}

// docRequest builds the request of one table row, as "keyhole policy
// check" would, plus the file attributes only the page's tables set.
func docRequest(t *testing.T, row docRow) authz.Request {
	t.Helper()
	c := row.cells
	rf := requestFlags{user: c[1], role: c[2], action: c[3], resource: c[4], auth: "certificate",
		sourceIP: "127.0.0.1", session: "doc", transport: "script"}
	attrs := map[string]*int64{}
	for _, word := range strings.Fields(c[5]) {
		k, v, _ := strings.Cut(word, "=")
		switch k {
		case "time":
			rf.at = v
		case "source_ip":
			rf.sourceIP = v
		case "kind":
			rf.kind = v
		case "args":
			rf.args = strings.Split(v, ",")
		case "principals":
			rf.principals = v
		case "auth":
			rf.auth = v
		case "absent":
			rf.absent = true
		case "size", "mode", "uid", "nlink":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("docs/policy.md:%d: %s: %v", row.line, word, err)
			}
			attrs[k] = &n
		default:
			t.Fatalf("docs/policy.md:%d: unknown context word %q", row.line, word)
		}
	}
	req, err := rf.request()
	if err != nil {
		t.Fatalf("docs/policy.md:%d: %v", row.line, err)
	}
	req.Resource.Size, req.Resource.Mode, req.Resource.UID, req.Resource.Nlink = attrs["size"], attrs["mode"], attrs["uid"], attrs["nlink"]
	return req
}

// TestPolicyDocTestFile runs the TOML example of docs/policy.md against
// the examples it speaks of.
func TestPolicyDocTestFile(t *testing.T) {
	t.Parallel()
	examples, tomls := readPolicyDoc(t)
	if len(tomls) != 1 {
		t.Fatalf("docs/policy.md has %d toml blocks, want 1", len(tomls))
	}
	dir := t.TempDir()
	for _, ex := range examples {
		if ex.heading != "The on-call log reader" && ex.heading != "A service restarter, in office hours" {
			continue
		}
		for i, b := range ex.blocks {
			name := strings.ReplaceAll(strings.ToLower(ex.heading), " ", "-") + strconv.Itoa(i) + ".cedar"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tf := filepath.Join(t.TempDir(), "policy_test.toml")
	if err := os.WriteFile(tf, []byte(tomls[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if err := cmdPolicyTest([]string{"-v", dir, tf}, &out, &errOut); err != nil {
		t.Fatalf("the documented test file fails: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "3 cases, 3 passed, 0 failed") {
		t.Fatalf("output:\n%s", out.String())
	}
}
