package audit_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyhole-dev/keyhole/audit"
)

// TestReopenDuringWrites renames the log and reopens it while eight
// goroutines write: every line is in the old file or the new one, whole,
// and none is lost or written twice.
func TestReopenDuringWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	w, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !w.Reopens() {
		t.Fatal("a file writer does not reopen")
	}
	const writers, per = 8, 250
	var (
		wg      sync.WaitGroup
		written atomic.Int64
		tick    = make(chan struct{}, 3) // at 500, 1000 and 1500 lines
	)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				mustLog(t, w, audit.Event{Event: audit.Decision, Session: strconv.Itoa(g), Resource: strconv.Itoa(i)})
				if n := written.Add(1); n%500 == 0 && n < writers*per {
					tick <- struct{}{}
				}
			}
		}()
	}
	// Rotate three times while the writers write, as logrotate would:
	// rename, then reopen.
	for r := 1; r <= 3; r++ {
		<-tick
		if err := os.Rename(path, path+"."+strconv.Itoa(r)); err != nil {
			t.Fatal(err)
		}
		if err := w.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, p := range []string{path + ".1", path + ".2", path + ".3", path} {
		for _, line := range readLines(t, p) {
			var e audit.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("%s: line %q: %v", p, line, err)
			}
			k := e.Session + "/" + e.Resource
			if seen[k] {
				t.Fatalf("line %s written twice", k)
			}
			seen[k] = true
		}
	}
	if len(seen) != writers*per {
		t.Fatalf("%d lines in the four files, want %d", len(seen), writers*per)
	}
}

// TestReopenFailureKeepsOldFile: when the path cannot be opened again
// (its directory is gone), Reopen fails and lines keep going to the file
// the writer holds.
func TestReopenFailureKeepsOldFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "audit.log")
	w, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	mustLog(t, w, audit.Event{Event: audit.SessionStart, Session: "a"})
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(sub, moved); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err == nil {
		t.Fatal("reopen in a directory that is gone succeeded")
	}
	mustLog(t, w, audit.Event{Event: audit.SessionEnd, Session: "a"})
	if got := readLines(t, filepath.Join(moved, "audit.log")); len(got) != 2 {
		t.Fatalf("old file has %d lines, want 2: %q", len(got), got)
	}
}

// TestReopenWithoutPath: a writer on an io.Writer has nothing to reopen.
func TestReopenWithoutPath(t *testing.T) {
	t.Parallel()
	w := audit.NewWriter(&lockedBuf{})
	if w.Reopens() {
		t.Fatal("a writer without a path reopens")
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
