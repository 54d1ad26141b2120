package inventory_test

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/client/inventory"
)

// docFile is a fenced block of docs/inventory.md whose first line names
// it (# hosts.ini), with the error block that follows it, if any.
type docFile struct {
	line          int
	name, content string
	wantErr       string
}

// docTable is a table of docs/inventory.md: its header and rows, cells
// without their backticks.
type docTable struct {
	header []string
	rows   [][]string
	lines  []int
}

func readDocs(t *testing.T) (files []*docFile, tables []*docTable) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "inventory.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fence bool
	var block []string
	var start int
	var table *docTable
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case fence && strings.HasPrefix(line, "```"):
			fence = false
			content := strings.Join(block, "\n") + "\n"
			switch {
			case strings.HasPrefix(content, "inventory: "):
				if len(files) == 0 || files[len(files)-1].wantErr != "" {
					t.Fatalf("docs/inventory.md:%d: an error block follows no inventory", start)
				}
				files[len(files)-1].wantErr = strings.TrimSpace(content)
			case strings.HasPrefix(content, "# "):
				name := strings.TrimSpace(strings.TrimPrefix(block[0], "# "))
				files = append(files, &docFile{line: start, name: name, content: content})
			default:
				t.Fatalf("docs/inventory.md:%d: a block neither names a file (# name) nor is an error", start)
			}
		case fence:
			block = append(block, line)
		case strings.HasPrefix(line, "```"):
			fence, block, start = true, nil, n
		case strings.HasPrefix(line, "|"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for i := range cells {
				cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
			}
			switch {
			case table == nil:
				table = &docTable{header: cells}
				tables = append(tables, table)
			case strings.HasPrefix(cells[0], "---"):
			default:
				if len(cells) != len(table.header) {
					t.Fatalf("docs/inventory.md:%d: %d cells, the header has %d", n, len(cells), len(table.header))
				}
				table.rows = append(table.rows, cells)
				table.lines = append(table.lines, n)
			}
		default:
			table = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return files, tables
}

// TestDocs checks every example of docs/inventory.md: the inventories
// parse (or fail with the error shown), the INI and YAML forms agree, and
// every table row holds.
func TestDocs(t *testing.T) {
	t.Parallel()
	files, tables := readDocs(t)
	dir := t.TempDir()
	invs := map[string]*inventory.Inventory{}
	paths := map[string]string{}
	for _, f := range files {
		if strings.HasPrefix(f.name, "group_vars/") || strings.HasPrefix(f.name, "host_vars/") {
			p := filepath.Join(dir, f.name)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(f.content), 0o600); err != nil {
				t.Fatal(err)
			}
			continue
		}
		inv, err := inventory.Parse(f.name, []byte(f.content))
		if f.wantErr != "" {
			if err == nil || err.Error() != f.wantErr {
				t.Errorf("docs/inventory.md:%d: %s: error\n%v\nwant\n%s", f.line, f.name, err, f.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("docs/inventory.md:%d: %v", f.line, err)
			continue
		}
		invs[f.name] = inv
		paths[f.name] = filepath.Join(dir, f.name)
		if err := os.WriteFile(paths[f.name], []byte(f.content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ini, yml, plain := invs["hosts.ini"], invs["hosts.yml"], invs["hosts.txt"]
	if ini == nil || yml == nil || plain == nil || paths["failed.txt"] == "" {
		t.Fatalf("docs/inventory.md lacks hosts.ini, hosts.yml, hosts.txt or failed.txt")
	}
	if !reflect.DeepEqual(ini.Hosts(), yml.Hosts()) {
		t.Errorf("docs/inventory.md: hosts.ini and hosts.yml differ:\n%+v\n%+v", ini.Hosts(), yml.Hosts())
	}
	loaded, err := inventory.Load(paths["hosts.ini"])
	if err != nil {
		t.Fatalf("docs/inventory.md: hosts.ini with its group_vars and host_vars: %v", err)
	}
	checked := 0
	for _, tb := range tables {
		head := strings.Join(tb.header, "|")
		for i, row := range tb.rows {
			where := "docs/inventory.md:" + strconv.Itoa(tb.lines[i])
			switch head {
			case "pattern|selects", "pattern|error":
				pattern := strings.ReplaceAll(row[0], "@failed.txt", "@"+paths["failed.txt"])
				for _, inv := range []*inventory.Inventory{ini, yml} {
					hs, err := inv.Select(pattern)
					if head == "pattern|error" {
						if err == nil || err.Error() != row[1] {
							t.Errorf("%s: Select(%q) error\n%v\nwant\n%s", where, row[0], err, row[1])
						}
					} else if err != nil || names(hs) != strings.ReplaceAll(row[1], ".corp.test", "") {
						t.Errorf("%s: Select(%q) = %s, %v; want %s", where, row[0], names(hs), err, row[1])
					}
				}
			case "loaded host|Port|User|tier":
				checkHost(t, where, loaded, row[0], map[string]string{"Port": row[1], "User": row[2], "tier": row[3]})
			case "host|Addr|Port|User":
				checkHost(t, where, plain, row[0], map[string]string{"Addr": row[1], "Port": row[2], "User": row[3]})
			case "host|Addr|Port|User|Jump|tier|groups":
				want := map[string]string{"Addr": row[1], "Port": row[2], "User": row[3], "Jump": row[4], "tier": row[5], "groups": row[6]}
				checkHost(t, where, ini, row[0], want)
				checkHost(t, where, yml, row[0], want)
			default:
				continue
			}
			checked++
		}
	}
	if checked < 25 {
		t.Errorf("only %d table rows of docs/inventory.md checked", checked)
	}
}

func checkHost(t *testing.T, where string, inv *inventory.Inventory, name string, want map[string]string) {
	t.Helper()
	hs, err := inv.Select(name)
	if err != nil || len(hs) != 1 {
		t.Errorf("%s: Select(%q) = %d hosts, %v", where, name, len(hs), err)
		return
	}
	h := hs[0]
	got := map[string]string{"Addr": h.Addr, "Port": strconv.Itoa(h.Port), "User": h.User, "Jump": h.Jump, "tier": h.Vars["tier"], "groups": strings.Join(h.Groups, " ")}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s %s = %q, want %q", where, name, k, got[k], w)
		}
	}
}
