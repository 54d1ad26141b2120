package authz_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
)

const (
	permitLogs = `@id("logs-read")
permit (principal in Keyhole::Role::"logs", action == Keyhole::Action::"read", resource in Keyhole::Dir::"/var/log");
`
	forbidLogs = `@id("logs-closed")
forbid (principal, action, resource in Keyhole::Dir::"/var/log");
`
	// badPolicy reads an attribute the schema does not have, on line 2.
	badPolicy = `// a typo
@id("typo")
permit (principal, action, resource is Keyhole::File) when { resource.owner == "root" };
`
)

// newStore writes files into a fresh directory and returns a store over it,
// with the audit events and log lines it writes.
func newStore(t *testing.T, files map[string]string, debounce time.Duration) (*authz.Store, string, *audit.Memory, *logtest.Hook) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		writeFile(t, filepath.Join(dir, name), text)
	}
	ps, err := authz.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	mem := &audit.Memory{}
	s, err := authz.NewStore(dir, ps, authz.StoreOptions{Audit: mem, Log: log, Debounce: debounce})
	if err != nil {
		t.Fatal(err)
	}
	return s, dir, mem, hook
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func versionOf(t testing.TB, files map[string]string) string {
	t.Helper()
	m := make(map[string][]byte, len(files))
	for k, v := range files {
		m[k] = []byte(v)
	}
	ps, err := authz.LoadFiles(m)
	if err != nil {
		t.Fatal(err)
	}
	return ps.Version()
}

func TestNewStoreNeedsASet(t *testing.T) {
	t.Parallel()
	if _, err := authz.NewStore(t.TempDir(), nil, authz.StoreOptions{}); err == nil {
		t.Fatal("NewStore(nil set) succeeded")
	}
}

func TestStoreReload(t *testing.T) {
	t.Parallel()
	s, dir, mem, hook := newStore(t, map[string]string{"a.cedar": permitLogs}, 0)
	first := s.Current()
	if !first.Decide(readReq("/var/log/x")).Allow {
		t.Fatal("initial set does not allow the read")
	}

	// unchanged: nothing swapped, still audited when asked for.
	v, changed, err := s.Reload(authz.TriggerSignal)
	if err != nil || changed || v != first.Version() || s.Current() != first {
		t.Fatalf("unchanged reload = %q, %v, %v; current swapped: %v", v, changed, err, s.Current() != first)
	}

	// a valid change swaps the set.
	writeFile(t, filepath.Join(dir, "b.cedar"), forbidLogs)
	want := versionOf(t, map[string]string{"a.cedar": permitLogs, "b.cedar": forbidLogs})
	v, changed, err = s.Reload(authz.TriggerSignal)
	if err != nil || !changed || v != want || s.Current().Version() != want {
		t.Fatalf("reload = %q, %v, %v; want %q, true, nil", v, changed, err, want)
	}
	if d := s.Current().Decide(readReq("/var/log/x")); d.Allow || d.Version != want {
		t.Fatalf("after reload: %+v", d)
	}
	if d := first.Decide(readReq("/var/log/x")); !d.Allow || d.Version != first.Version() {
		t.Fatalf("the old snapshot changed: %+v", d)
	}

	// a bad set is refused whole: the good file in it does not take effect.
	good := s.Current()
	writeFile(t, filepath.Join(dir, "b.cedar"), strings.ReplaceAll(forbidLogs, "/var/log", "/srv"))
	writeFile(t, filepath.Join(dir, "c.cedar"), badPolicy)
	v, changed, err = s.Reload(authz.TriggerChange)
	if err == nil || changed || v != want || s.Current() != good {
		t.Fatalf("bad reload = %q, %v, %v; current swapped: %v", v, changed, err, s.Current() != good)
	}
	at := filepath.Join(dir, "c.cedar") + ":2:"
	if !strings.Contains(err.Error(), at) {
		t.Errorf("error %q does not name %s", err, at)
	}
	var logged bool
	for _, e := range hook.AllEntries() {
		logged = logged || e.Level == logrus.ErrorLevel && strings.Contains(e.Message, at)
	}
	if !logged {
		t.Errorf("no error log line names %s", at)
	}

	evs := mem.Events()
	if len(evs) != 3 {
		t.Fatalf("audit events = %+v, want 3", evs)
	}
	wantEv := []struct{ version, reason string }{
		{first.Version(), "sighup: unchanged"},
		{want, "sighup: loaded 2 policies, replacing " + first.Version()},
		{want, "file change: refused, kept the last good set: authz: " + at},
	}
	for i, w := range wantEv {
		e := evs[i]
		if e.Event != audit.PolicyReload || e.PolicyVersion != w.version || !strings.HasPrefix(e.Reason, w.reason) || e.Time.IsZero() {
			t.Errorf("event %d = %+v, want version %s, reason %q…", i, e, w.version, w.reason)
		}
	}

	// a missing directory is refused too.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Reload(authz.TriggerSignal); err == nil || s.Current() != good {
		t.Fatalf("reload of a removed dir = %v; current swapped: %v", err, s.Current() != good)
	}
}

// TestStoreReloadRace decides from many goroutines while the set is
// reloaded: each decision is made by one whole set, the one its snapshot
// names (run with -race).
func TestStoreReloadRace(t *testing.T) {
	t.Parallel()
	s, dir, _, _ := newStore(t, map[string]string{"a.cedar": permitLogs}, 0)
	allowV := s.Current().Version()
	denyV := versionOf(t, map[string]string{"a.cedar": permitLogs, "b.cedar": forbidLogs})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ps := s.Current()
				d := ps.Decide(readReq("/var/log/x"))
				if d.Version != ps.Version() || d.Allow != (d.Version == allowV) || (d.Version != allowV && d.Version != denyV) {
					errs <- fmt.Sprintf("decision %+v", d)
					return
				}
			}
		})
	}
	for i := range 50 {
		if i%2 == 0 {
			writeFile(t, filepath.Join(dir, "b.cedar"), forbidLogs)
		} else if err := os.Remove(filepath.Join(dir, "b.cedar")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Reload(authz.TriggerSignal); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestStoreWatch changes the directory the ways people and tools do and
// waits for each change to take effect.
func TestStoreWatch(t *testing.T) {
	t.Parallel()
	s, dir, mem, _ := newStore(t, map[string]string{"a.cedar": permitLogs}, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitVersion := func(step string, files map[string]string) {
		t.Helper()
		want := versionOf(t, files)
		deadline := time.Now().Add(20 * time.Second)
		for s.Current().Version() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: version %s, want %s; audit: %+v", step, s.Current().Version(), want, mem.Events())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	changed := "// changed\n" + permitLogs
	writeFile(t, filepath.Join(dir, "a.cedar"), changed)
	waitVersion("write-in-place", map[string]string{"a.cedar": changed})

	tmp := filepath.Join(dir, ".b.cedar.tmp")
	writeFile(t, tmp, forbidLogs)
	if err := os.Rename(tmp, filepath.Join(dir, "b.cedar")); err != nil {
		t.Fatal(err)
	}
	waitVersion("rename-into-place", map[string]string{"a.cedar": changed, "b.cedar": forbidLogs})

	// An editor that keeps a backup: the old file is renamed away, the new
	// one written under the old name.
	if err := os.Rename(filepath.Join(dir, "b.cedar"), filepath.Join(dir, "b.cedar~")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "b.cedar"), "// reopened\n"+forbidLogs)
	waitVersion("backup-and-write", map[string]string{"a.cedar": changed, "b.cedar": "// reopened\n" + forbidLogs})

	if err := os.Remove(filepath.Join(dir, "b.cedar")); err != nil {
		t.Fatal(err)
	}
	waitVersion("remove", map[string]string{"a.cedar": changed})

	// A bad file is refused and audited; fixing it is picked up.
	good := s.Current()
	writeFile(t, filepath.Join(dir, "c.cedar"), badPolicy)
	waitEvent(t, mem, "refused", filepath.Join(dir, "c.cedar")+":2:")
	if s.Current() != good {
		t.Fatal("a bad set took effect")
	}
	writeFile(t, filepath.Join(dir, "c.cedar"), forbidLogs)
	waitVersion("fixed", map[string]string{"a.cedar": changed, "c.cedar": forbidLogs})

	// The directory removed and made again: the last good set stays, then
	// the new directory is watched.
	good = s.Current()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, mem, "refused", "read policy dir")
	if s.Current() != good {
		t.Fatal("a removed directory changed the set")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a.cedar"), permitLogs)
	waitVersion("recreated", map[string]string{"a.cedar": permitLogs})
}

// waitEvent waits for a policy.reload event whose reason holds both parts.
func waitEvent(t *testing.T, mem *audit.Memory, part1, part2 string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, e := range mem.Events() {
			if e.Event == audit.PolicyReload && strings.Contains(e.Reason, part1) && strings.Contains(e.Reason, part2) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no policy.reload event with %q and %q in %+v", part1, part2, mem.Events())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStoreWatchMissingDir(t *testing.T) {
	t.Parallel()
	s, dir, _, _ := newStore(t, nil, 0)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "authz: watch ") {
		t.Fatalf("Watch of a missing dir = %v", err)
	}
}

// TestStoreWatchInPlaceHalves saves a file in place in two writes, a
// permit and then the forbid that closes it again, with a pause longer than
// the quiet period between them: the watcher reads the permit alone, and
// that set, which allows what the whole file denies, must never take
// effect. It then shows the limit of the guarantee: a writer that stops
// for good after the first half has its half file loaded, no sooner than
// two quiet periods after the write.
func TestStoreWatchInPlaceHalves(t *testing.T) {
	t.Parallel()
	const debounce = 500 * time.Millisecond
	pause := debounce + debounce*3/10 // read once, changed before the second read
	s, dir, mem, hook := newStore(t, map[string]string{"a.cedar": permitLogs + forbidLogs}, debounce)
	ctx, cancel := context.WithCancel(context.Background())
	done, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
	seen := make(chan map[string]bool)
	stop := make(chan struct{})
	go func() { // every version that is ever current, polled
		m := map[string]bool{}
		for {
			m[s.Current().Version()] = true
			select {
			case <-stop:
				seen <- m
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	p := filepath.Join(dir, "a.cedar")
	wait := func(what, v string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for s.Current().Version() != v {
			if time.Now().After(deadline) {
				t.Fatalf("%s: version %s, want %s; audit: %+v", what, s.Current().Version(), v, mem.Events())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	heldBack := func(v string) bool { // the watcher read v and waited
		for _, e := range hook.AllEntries() {
			if e.Data["read"] == v && strings.Contains(e.Message, "waiting for them to settle") {
				return true
			}
		}
		return false
	}

	var halves []string // versions of the cut-off files, which must never take effect
	observed := false
	for round := 0; round < 3 && !observed; round++ {
		half := fmt.Sprintf("// round %d\n", round) + permitLogs
		whole := half + forbidLogs
		halfV := versionOf(t, map[string]string{"a.cedar": half})
		wholeV := versionOf(t, map[string]string{"a.cedar": whole})
		halves = append(halves, halfV)
		if d := mustLoad(t, half).Decide(readReq("/var/log/x")); !d.Allow {
			t.Fatalf("the half file does not widen access: %+v", d)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(half); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pause)
		if _, err := f.WriteString(forbidLogs); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		wait(fmt.Sprintf("round %d", round), wholeV)
		observed = heldBack(halfV)
	}
	if !observed {
		t.Error("the watcher never read a half file in 3 rounds: the test did not exercise the guarantee")
	}

	// The limit: a half file left alone is loaded, two quiet periods (the
	// quiet wait and the second read) after it was written at the earliest.
	half := "// left cut off\n" + permitLogs
	before := time.Now()
	writeFile(t, p, half)
	wait("half left alone", versionOf(t, map[string]string{"a.cedar": half}))
	if took := time.Since(before); took < 2*debounce {
		t.Errorf("the half file took effect %v after it was written, want at least %v", took, 2*debounce)
	}

	close(stop)
	current := <-seen
	for _, v := range halves {
		if current[v] {
			t.Errorf("a cut-off file took effect (version %s)", v)
		}
		for _, e := range mem.Events() {
			if e.PolicyVersion == v {
				t.Errorf("a cut-off file took effect: %+v", e)
			}
		}
	}
}
