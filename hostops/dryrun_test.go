package hostops_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/hostops"
)

// dryCase is one call of a Host operation under TestEveryOperationHonoursDryRun.
type dryCase struct {
	// run calls the operation; it may check what a read returned.
	run func(h *hostops.Host, s *sandbox, bin string) error
	// acts: a real run of the call changes the host (the tree, the
	// marker program's file, or a service manager action).
	acts bool
	// status: the call runs the service manager's status, which a dry run
	// still runs.
	status bool
}

// TestEveryOperationHonoursDryRun calls every exported method of *Host
// (found by reflection, so a new operation without a case fails here)
// with Host.DryRun set, allowed by the policy: it succeeds, every line it
// writes says dry_run, reads still return what they read, and nothing on
// the host changes: not the sandbox tree, not a program's marker file,
// not the fake service manager's record of actions. Each call that
// changes the host is also run for real, to show that the case would see
// the change, and dry and denied, to show that a denial is still
// ACCESS_DENIED.
func TestEveryOperationHonoursDryRun(t *testing.T) {
	ctx := context.Background()
	errOf := func(_ any, err error) error { return err }
	cases := map[string]dryCase{
		"Allowed": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			if ok, err := h.Allowed("write", s.path("allowed/new.txt")); err != nil || !ok {
				return errors.New("allowed(write) is not true in a dry run")
			}
			return nil
		}},
		"Append": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Append(s.path("allowed/public.txt"), []byte("more"))
		}},
		"Append/new": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Append(s.path("allowed/new.txt"), []byte("more"))
		}},
		"Chmod": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Chmod(s.path("allowed/public.txt"), 0o600)
		}},
		"Copy": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Copy(s.path("allowed/public.txt"), s.path("allowed/copy.txt"))
		}},
		"Copy/over": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Copy(s.path("allowed/public.txt"), s.path("allowed/sub/nested.txt"))
		}},
		"Disk": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			d, err := h.Disk(s.path("allowed"))
			if err == nil && d.Total == 0 {
				return errors.New("disk: no total")
			}
			return err
		}},
		"Exec": {acts: true, run: func(h *hostops.Host, _ *sandbox, bin string) error {
			res, err := h.Exec(ctx, []string{bin}, hostops.ExecOptions{})
			if err == nil && res.Path != bin {
				return errors.New("exec: result does not name the program: " + res.Path)
			}
			return err
		}},
		"Exists": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			if ok, err := h.Exists(s.path("allowed/public.txt")); err != nil || !ok {
				return errors.New("exists is not true")
			}
			return nil
		}},
		"Glob": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			got, err := h.Glob(s.path("allowed/*.txt"))
			if err == nil && len(got) == 0 {
				return errors.New("glob: nothing")
			}
			return err
		}},
		"Grep": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			got, err := h.Grep(s.path("allowed/public.txt"), regexp.MustCompile("data"), 0)
			if err == nil && len(got) != 1 {
				return errors.New("grep: no match")
			}
			return err
		}},
		"Hostname": {run: func(h *hostops.Host, _ *sandbox, _ string) error { return errOf(h.Hostname()) }},
		"Kernel":   {run: func(h *hostops.Host, _ *sandbox, _ string) error { return errOf(h.Kernel()) }},
		"Lines": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			got, err := h.Lines(s.path("allowed/public.txt"), 0)
			if err == nil && !slices.Equal(got, []string{"public data"}) {
				return errors.New("lines: wrong lines")
			}
			return err
		}},
		"List": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			got, err := h.List(s.path("allowed"))
			if err == nil && len(got) == 0 {
				return errors.New("list: empty")
			}
			return err
		}},
		"Load":   {run: func(h *hostops.Host, _ *sandbox, _ string) error { return errOf(h.Load()) }},
		"Memory": {run: func(h *hostops.Host, _ *sandbox, _ string) error { return errOf(h.Memory()) }},
		"Mkdir": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Mkdir(s.path("allowed/newdir"), false)
		}},
		"Mkdir/parents": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Mkdir(s.path("allowed/a/b/c"), true)
		}},
		"Read": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			got, err := h.Read(s.path("allowed/public.txt"), 0)
			if err == nil && string(got) != "public data\n" {
				return errors.New("read: wrong data")
			}
			return err
		}},
		"Remove": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Remove(s.path("allowed/public.txt"))
		}},
		"Remove/dir": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Remove(s.path("allowed/empty"))
		}},
		"Rename": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Rename(s.path("allowed/public.txt"), s.path("allowed/renamed.txt"))
		}},
		"Rename/over": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Rename(s.path("allowed/public.txt"), s.path("allowed/sub/nested.txt"))
		}},
		"Service/status": {status: true, run: func(h *hostops.Host, _ *sandbox, _ string) error {
			res, err := h.Service(ctx, hostops.ServiceStatus, "web", hostops.ExecOptions{})
			if err == nil && res.Exit != 0 {
				return errors.New("status: web is not active")
			}
			return err
		}},
		"Stat": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			info, err := h.Stat(s.path("allowed/public.txt"))
			if err == nil && info.Size != int64(len("public data\n")) {
				return errors.New("stat: wrong size")
			}
			return err
		}},
		"Tail": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			got, err := h.Tail(ctx, s.path("allowed/public.txt"), 1)
			if err == nil && !slices.Equal(got, []string{"public data"}) {
				return errors.New("tail: wrong lines")
			}
			return err
		}},
		"Uptime": {run: func(h *hostops.Host, _ *sandbox, _ string) error { return errOf(h.Uptime()) }},
		"Write": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Write(s.path("allowed/public.txt"), []byte("new"), hostops.KeepMode)
		}},
		"Write/new": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			return h.Write(s.path("allowed/new.txt"), []byte("new"), 0o600)
		}},
		"Cat": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			var got collectSender
			if _, err := h.Cat(s.path("allowed/public.txt"), &got); err != nil {
				return err
			}
			if string(got) != "public data\n" {
				return errors.New("cat: wrong bytes")
			}
			return nil
		}},
		"Sha256": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			sum, err := h.Sha256(ctx, s.path("allowed/public.txt"))
			if want := sha256.Sum256([]byte("public data\n")); err == nil && sum != hex.EncodeToString(want[:]) {
				return errors.New("sha256: wrong sum")
			}
			return err
		}},
		"StreamRead": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			r, err := h.StreamRead(s.path("allowed/public.txt"))
			if err != nil {
				return err
			}
			defer r.Close()
			b := make([]byte, 6)
			if n, err := r.ReadAt(b, 0); n != 6 || string(b) != "public" {
				return fmt.Errorf("stream read: %q, %v", b[:n], err)
			}
			return nil
		}},
		"ListVisible": {run: func(h *hostops.Host, s *sandbox, _ string) error {
			got, err := h.ListVisible(s.path("allowed"))
			if err == nil && len(got) == 0 {
				return errors.New("list visible: empty")
			}
			return err
		}},
		"SetTimes": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			t0 := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			return h.SetTimes(s.path("allowed/public.txt"), t0, t0)
		}},
		"StartUpload": {acts: true, run: func(h *hostops.Host, s *sandbox, _ string) error {
			u, err := h.StartUpload(s.path("allowed/new.txt"), 0o644, hostops.UploadFlags{Truncate: true})
			if err != nil {
				return err
			}
			if _, err := u.WriteAt([]byte("uploaded"), 0); err != nil {
				u.Abort()
				return err
			}
			return u.Commit()
		}},
	}
	for _, action := range []string{hostops.ServiceStart, hostops.ServiceStop, hostops.ServiceRestart, hostops.ServiceReload} {
		cases["Service/"+action] = dryCase{acts: true, run: func(h *hostops.Host, _ *sandbox, _ string) error {
			res, err := h.Service(ctx, action, "web", hostops.ExecOptions{})
			if err == nil && (res.Name != "web" || res.Action != action) {
				return errors.New("service: result does not say what would have been done")
			}
			return err
		}}
	}

	typ := reflect.TypeOf((*hostops.Host)(nil))
	var methods []string
	for i := range typ.NumMethod() {
		methods = append(methods, typ.Method(i).Name)
	}
	method := func(name string) string { m, _, _ := strings.Cut(name, "/"); return m }
	for _, m := range methods {
		if _, ok := cases[m]; !ok && !slices.ContainsFunc(slices.Collect(maps.Keys(cases)), func(k string) bool { return method(k) == m }) {
			t.Errorf("(*Host).%s has no case here: say what it does in a dry run", m)
		}
	}
	var names []string
	for name := range cases {
		if !slices.Contains(methods, method(name)) {
			t.Errorf("case %s names no method of *Host", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)

	// call runs c on a fresh sandbox and reports what changed.
	type outcome struct {
		err      error
		root     []string // the sandbox's root and the programs' directory
		events   []audit.Event
		changed  bool // the tree or the marker
		managed  [][]string
		statuses int
	}
	call := func(t *testing.T, c dryCase, dry, allow bool) outcome {
		t.Helper()
		s := newSandbox(t)
		mgr, log := fakeManager(t)
		bins := newBins(t)
		var d hostops.Decider = &policy{}
		if allow {
			d = &policy{rules: []rule{{id: "all-here", under: []string{s.root, "/proc", bins.dir, "web"}}}}
		}
		h, _ := newHost(d)
		sink := &countingSink{}
		h.Audit, h.ServiceManager, h.DryRun = sink, []string{mgr}, dry
		before := tree(t, s.root) + mtimes(t, s.root)
		err := c.run(h, s, bins.path("marker"))
		_, merr := os.Stat(bins.path("ran"))
		o := outcome{err: err, root: []string{s.root, bins.dir}, events: sink.since(0),
			changed: tree(t, s.root)+mtimes(t, s.root) != before || merr == nil}
		for _, cl := range actions(calls(t, log)) {
			if slices.Contains(cl, hostops.ServiceStatus) {
				o.statuses++
				continue
			}
			o.managed = append(o.managed, cl)
		}
		return o
	}
	// lines are o's decision lines, as "action resource decision
	// policies", with the sandbox's root and the programs' directory taken
	// out.
	lines := func(o outcome) []string {
		var out []string
		for _, e := range o.events {
			line := e.Action + " " + e.Resource + " " + e.Decision + " " + strings.Join(e.Policies, ",")
			for _, r := range o.root {
				line = strings.ReplaceAll(line, r, "")
			}
			out = append(out, line)
		}
		return out
	}
	for _, name := range names {
		c := cases[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := call(t, c, true, true)
			if o.err != nil {
				t.Fatalf("dry run: %v", o.err)
			}
			if o.changed {
				t.Error("a dry run changed the host")
			}
			if len(o.managed) > 0 {
				t.Errorf("a dry run ran the service manager: %q", o.managed)
			}
			if c.status && o.statuses != 1 {
				t.Errorf("a dry run ran status %d times, want 1 (it only reads)", o.statuses)
			}
			if len(o.events) == 0 {
				t.Error("no decision line")
			}
			for _, e := range o.events {
				if !e.DryRun || e.Decision != "allow" {
					t.Errorf("line %s %s: decision %s, dry_run %v; want allow, true", e.Action, e.Resource, e.Decision, e.DryRun)
				}
			}
			if !c.acts {
				return
			}
			// The case sees a real change.
			if real := call(t, c, false, true); real.err != nil || (!real.changed && len(real.managed) == 0) {
				t.Errorf("a real run: %v, changed %v, manager %q: the case cannot see a change", real.err, real.changed, real.managed)
			} else if slices.ContainsFunc(real.events, func(e audit.Event) bool { return e.DryRun }) {
				t.Error("a real run's line says dry_run")
			} else if dry, rl := lines(o), lines(real); !slices.Equal(dry, rl) {
				t.Errorf("a dry run decided %q, a real run %q: it must decide exactly what a real run does", dry, rl)
			}
			// A denial is a denial, dry run or not.
			denied := call(t, c, true, false)
			checkKind(t, denied.err, hostops.KindAccessDenied, "denied")
			if denied.changed || len(denied.managed) > 0 {
				t.Error("a denied dry run changed the host")
			}
			if len(denied.events) == 0 || !denied.events[len(denied.events)-1].DryRun {
				t.Errorf("denied dry run lines = %+v, want a deny marked dry_run", denied.events)
			}
		})
	}
}

// collectSender is a hostops.FileSender that keeps the bytes.
type collectSender []byte

func (c *collectSender) SendFile(f *os.File, _ string, n int64) (int64, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, n))
	*c = append(*c, b...)
	return int64(len(b)), err
}

// mtimes lists the modification time of every regular file under dir,
// which tree leaves out.
func mtimes(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d\n", p, fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
