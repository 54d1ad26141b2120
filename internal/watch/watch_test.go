package watch_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keyhole-dev/keyhole/internal/watch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start watches dirs with a short quiet period and sends what look(…)
// returns on each call.
func start(t *testing.T, dirs []string, look func(call int) (string, bool)) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan string, 1000)
	n := 0
	done, err := watch.Dirs(ctx, dirs, watch.Options{Debounce: 20 * time.Millisecond, Retry: 10 * time.Millisecond},
		func() bool {
			n++
			s, again := look(n)
			calls <- s
			return again
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	return calls
}

// await reads calls until one reports want.
func await(t *testing.T, calls <-chan string, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-calls:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("no call saw %q", want)
		}
	}
}

func count(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "gone"
	}
	return strconv.Itoa(len(ents))
}

func TestDirsCallsAfterTheLastChange(t *testing.T) {
	dir := t.TempDir()
	calls := start(t, []string{dir}, func(int) (string, bool) { return count(dir), false })
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	await(t, calls, "20")
	// A rename into place is a change too.
	tmp := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "renamed")); err != nil {
		t.Fatal(err)
	}
	await(t, calls, "21")
}

func TestDirsWatchesSeveralDirectories(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	calls := start(t, []string{a, b, a + "/"}, func(int) (string, bool) { return count(a) + "," + count(b), false })
	if err := os.WriteFile(filepath.Join(b, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	await(t, calls, "0,1")
	if err := os.WriteFile(filepath.Join(a, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	await(t, calls, "1,1")
}

func TestDirsCallsAgainWhenAsked(t *testing.T) {
	dir := t.TempDir()
	calls := start(t, []string{dir}, func(n int) (string, bool) { return strconv.Itoa(n), n < 3 })
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// One event, three calls: the first two asked for another look.
	await(t, calls, "3")
}

func TestDirsFollowsADirectoryThatComesBack(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	calls := start(t, []string{dir}, func(int) (string, bool) { return count(dir), false })
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	await(t, calls, "gone")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Its return is a change of its own...
	await(t, calls, "0")
	// ...and it is watched again.
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	await(t, calls, "1")
}

func TestDirsRefusesWhatItCannotWatch(t *testing.T) {
	for _, dirs := range [][]string{nil, {filepath.Join(t.TempDir(), "missing")}} {
		if _, err := watch.Dirs(context.Background(), dirs, watch.Options{}, func() bool { return false }); err == nil {
			t.Errorf("Dirs(%q) watched", dirs)
		}
	}
}
