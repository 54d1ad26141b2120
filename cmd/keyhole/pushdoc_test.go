package main

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/client"
)

// Every keyhole push command of the sh blocks of docs/client.md and the
// README parses as push takes it: flags that exist, hosts that parse (or
// an inventory pattern that selects hosts of the example inventory),
// files and an absolute DEST. What each one does is run by
// testdata/push.txt.
func TestClientDocPushCommands(t *testing.T) {
	if n := checkPushCommands(t, filepath.Join("..", "..", "docs", "client.md")); n < 4 {
		t.Errorf("found %d keyhole push commands in docs/client.md, want the 4 it shows", n)
	}
	if n := checkPushCommands(t, filepath.Join("..", "..", "README.md")); n < 1 {
		t.Errorf("found %d keyhole push commands in README.md, want 1", n)
	}
}

func checkPushCommands(t *testing.T, path string) int {
	t.Helper()
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	inSh := false
	var invDir string
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, "```sh"):
			inSh = true
			continue
		case strings.HasPrefix(text, "```"):
			inSh = false
			continue
		}
		if !inSh || !strings.HasPrefix(text, "keyhole push ") {
			continue
		}
		n++
		req, err := parsePush(splitWords(t, text)[2:], io.Discard)
		if err != nil {
			t.Errorf("%s:%d: %v", name, line, err)
			continue
		}
		for _, d := range req.dests {
			if _, err := client.ParseTarget(d); err != nil {
				t.Errorf("%s:%d: %v", name, line, err)
			}
		}
		if req.pf.inventory != "" {
			if invDir == "" {
				invDir = docInventory(t)
			}
			limit := req.pf.limit
			if strings.HasPrefix(limit, "@") {
				limit = "@" + filepath.Join(invDir, limit[1:])
			}
			if _, err := (targetSource{inventory: filepath.Join(invDir, req.pf.inventory), limit: limit}).targets(""); err != nil {
				t.Errorf("%s:%d: %v", name, line, err)
			}
		}
	}
	return n
}
