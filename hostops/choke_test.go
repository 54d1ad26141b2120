package hostops_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/hostops"
)

// countingSink is an audit sink that keeps every event it is given.
type countingSink struct {
	mu     sync.Mutex
	events []audit.Event
}

func (c *countingSink) Log(e audit.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
	return nil
}

func (c *countingSink) since(n int) []audit.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events[n:])
}

func (c *countingSink) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// opCall is one call of a Host operation: what it returns, and the decision
// values of the lines it must write, in order.
type opCall struct {
	run   func(h *hostops.Host) error
	lines []string
	kind  string // the error kind; "" for success
}

// methodCase is how TestEveryOperationWritesItsDecisions calls one exported
// method: once allowed, once denied, and, for one that takes a path or a
// name, once with a bad one.
type methodCase struct {
	allowed, denied opCall
	bad             *opCall
}

// TestEveryOperationWritesItsDecisions calls every exported method of
// *Host (found by reflection, so a new operation without a case fails
// here) allowed, denied and with a bad argument, and checks that each call
// writes exactly its decision lines: one per operation, two for rename and
// copy when the source is allowed (source and destination), one per
// directory a glob lists, one per file a host fact reads. Bad input is
// also refused without an audit sink (nothing happens) and with one that
// fails (INTERNAL, whatever the operation).
func TestEveryOperationWritesItsDecisions(t *testing.T) {
	mgr, _ := fakeManager(t)
	trueBin, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	allow, deny := []string{"allow"}, []string{"deny"}
	denied := func(run func(h *hostops.Host) error) opCall {
		return opCall{run: run, lines: deny, kind: hostops.KindAccessDenied}
	}
	bad := func(run func(h *hostops.Host) error) *opCall {
		return &opCall{run: run, lines: deny, kind: hostops.KindInvalidArgument}
	}
	// Each case gets a fresh sandbox s; paths are built from it.
	var s *sandbox
	p := func(rel string) string { return s.path(rel) }
	ok := func(run func(h *hostops.Host) error) opCall { return opCall{run: run, lines: allow} }
	errOf := func(_ any, err error) error { return err }
	cases := map[string]methodCase{
		"Allowed": {
			allowed: ok(func(h *hostops.Host) error {
				got, err := h.Allowed("read", p("allowed/public.txt"))
				if err == nil && !got {
					return errors.New("not allowed")
				}
				return err
			}),
			denied: opCall{run: func(h *hostops.Host) error {
				got, err := h.Allowed("read", p("allowed/public.txt"))
				if err == nil && got {
					return errors.New("allowed")
				}
				return err
			}, lines: deny},
			bad: bad(func(h *hostops.Host) error { return errOf(h.Allowed("read", "relative")) }),
		},
		"Append": {
			allowed: ok(func(h *hostops.Host) error { return h.Append(p("allowed/new.txt"), []byte("x")) }),
			denied:  denied(func(h *hostops.Host) error { return h.Append(p("allowed/new.txt"), []byte("x")) }),
			bad:     bad(func(h *hostops.Host) error { return h.Append("relative", []byte("x")) }),
		},
		"Cat": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Cat(p("allowed/public.txt"), &sender{})) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Cat(p("allowed/public.txt"), &sender{})) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Cat("relative", &sender{})) }),
		},
		"Chmod": {
			allowed: ok(func(h *hostops.Host) error { return h.Chmod(p("allowed/public.txt"), 0o640) }),
			denied:  denied(func(h *hostops.Host) error { return h.Chmod(p("allowed/public.txt"), 0o640) }),
			bad:     bad(func(h *hostops.Host) error { return h.Chmod(p("allowed/public.txt"), 0o7777) }),
		},
		"Copy": {
			allowed: opCall{run: func(h *hostops.Host) error {
				return h.Copy(p("allowed/public.txt"), p("allowed/copy.txt"))
			}, lines: []string{"allow", "allow"}},
			denied: denied(func(h *hostops.Host) error { return h.Copy(p("allowed/public.txt"), p("allowed/copy.txt")) }),
			bad:    bad(func(h *hostops.Host) error { return h.Copy("relative", p("allowed/copy.txt")) }),
		},
		"Disk": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Disk(p("allowed"))) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Disk(p("allowed"))) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Disk("relative")) }),
		},
		"Exec": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Exec(ctx, []string{trueBin}, hostops.ExecOptions{})) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Exec(ctx, []string{trueBin}, hostops.ExecOptions{})) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Exec(ctx, []string{"./true"}, hostops.ExecOptions{})) }),
		},
		"Exists": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Exists(p("allowed/public.txt"))) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Exists(p("allowed/public.txt"))) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Exists("relative")) }),
		},
		"Glob": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Glob(p("allowed/*.txt"))) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Glob(p("allowed/*.txt"))) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Glob("relative/*")) }),
		},
		"Grep": {
			allowed: ok(func(h *hostops.Host) error {
				return errOf(h.Grep(p("allowed/public.txt"), regexp.MustCompile("data"), 0))
			}),
			denied: denied(func(h *hostops.Host) error {
				return errOf(h.Grep(p("allowed/public.txt"), regexp.MustCompile("data"), 0))
			}),
			bad: bad(func(h *hostops.Host) error { return errOf(h.Grep("relative", regexp.MustCompile("data"), 0)) }),
		},
		"Hostname": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Hostname()) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Hostname()) }),
		},
		"Kernel": {
			// Two facts, two files read.
			allowed: opCall{run: func(h *hostops.Host) error { return errOf(h.Kernel()) }, lines: []string{"allow", "allow"}},
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Kernel()) }),
		},
		"Lines": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Lines(p("allowed/public.txt"), 0)) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Lines(p("allowed/public.txt"), 0)) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Lines("relative", 0)) }),
		},
		"List": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.List(p("allowed"))) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.List(p("allowed"))) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.List("relative")) }),
		},
		"Load": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Load()) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Load()) }),
		},
		"Memory": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Memory()) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Memory()) }),
		},
		"Mkdir": {
			allowed: ok(func(h *hostops.Host) error { return h.Mkdir(p("allowed/newdir"), false) }),
			denied:  denied(func(h *hostops.Host) error { return h.Mkdir(p("allowed/newdir"), false) }),
			bad:     bad(func(h *hostops.Host) error { return h.Mkdir("relative", false) }),
		},
		"Read": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Read(p("allowed/public.txt"), 0)) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Read(p("allowed/public.txt"), 0)) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Read("relative", 0)) }),
		},
		"Sha256": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Sha256(ctx, p("allowed/public.txt"))) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Sha256(ctx, p("allowed/public.txt"))) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Sha256(ctx, "relative")) }),
		},
		"Remove": {
			allowed: ok(func(h *hostops.Host) error { return h.Remove(p("allowed/public.txt")) }),
			denied:  denied(func(h *hostops.Host) error { return h.Remove(p("allowed/public.txt")) }),
			bad:     bad(func(h *hostops.Host) error { return h.Remove("relative") }),
		},
		"Rename": {
			// Source and destination; a denied source stops it there.
			allowed: opCall{run: func(h *hostops.Host) error {
				return h.Rename(p("allowed/public.txt"), p("allowed/renamed.txt"))
			}, lines: []string{"allow", "allow"}},
			denied: denied(func(h *hostops.Host) error { return h.Rename(p("allowed/public.txt"), p("allowed/renamed.txt")) }),
			bad:    bad(func(h *hostops.Host) error { return h.Rename("relative", p("allowed/renamed.txt")) }),
		},
		"Service": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Service(ctx, "status", "web", hostops.ExecOptions{})) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Service(ctx, "status", "web", hostops.ExecOptions{})) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Service(ctx, "status", "-web", hostops.ExecOptions{})) }),
		},
		"ListVisible": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.ListVisible(p("allowed"))) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.ListVisible(p("allowed"))) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.ListVisible("relative")) }),
		},
		"SetTimes": {
			allowed: ok(func(h *hostops.Host) error { return h.SetTimes(p("allowed/public.txt"), testNow, testNow) }),
			denied:  denied(func(h *hostops.Host) error { return h.SetTimes(p("allowed/public.txt"), testNow, testNow) }),
			bad:     bad(func(h *hostops.Host) error { return h.SetTimes("relative", testNow, testNow) }),
		},
		"StartUpload": {
			allowed: ok(func(h *hostops.Host) error {
				u, err := h.StartUpload(p("allowed/new.txt"), hostops.KeepMode, hostops.UploadFlags{Truncate: true})
				if err != nil {
					return err
				}
				return u.Commit()
			}),
			denied: denied(func(h *hostops.Host) error {
				return errOf(h.StartUpload(p("allowed/new.txt"), hostops.KeepMode, hostops.UploadFlags{Truncate: true}))
			}),
			bad: bad(func(h *hostops.Host) error {
				return errOf(h.StartUpload("relative", hostops.KeepMode, hostops.UploadFlags{Truncate: true}))
			}),
		},
		"StreamRead": {
			allowed: ok(func(h *hostops.Host) error {
				r, err := h.StreamRead(p("allowed/public.txt"))
				if err != nil {
					return err
				}
				return r.Close()
			}),
			denied: denied(func(h *hostops.Host) error { return errOf(h.StreamRead(p("allowed/public.txt"))) }),
			bad:    bad(func(h *hostops.Host) error { return errOf(h.StreamRead("relative")) }),
		},
		"Stat": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Stat(p("allowed/public.txt"))) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Stat(p("allowed/public.txt"))) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Stat("relative")) }),
		},
		"Tail": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Tail(ctx, p("allowed/public.txt"), 1)) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Tail(ctx, p("allowed/public.txt"), 1)) }),
			bad:     bad(func(h *hostops.Host) error { return errOf(h.Tail(ctx, "relative", 1)) }),
		},
		"Uptime": {
			allowed: ok(func(h *hostops.Host) error { return errOf(h.Uptime()) }),
			denied:  denied(func(h *hostops.Host) error { return errOf(h.Uptime()) }),
		},
		"Write": {
			allowed: ok(func(h *hostops.Host) error { return h.Write(p("allowed/new.txt"), []byte("x"), hostops.KeepMode) }),
			denied:  denied(func(h *hostops.Host) error { return h.Write(p("allowed/new.txt"), []byte("x"), hostops.KeepMode) }),
			bad:     bad(func(h *hostops.Host) error { return h.Write("relative", []byte("x"), hostops.KeepMode) }),
		},
	}

	typ := reflect.TypeOf((*hostops.Host)(nil))
	var methods []string
	for i := range typ.NumMethod() {
		methods = append(methods, typ.Method(i).Name)
	}
	for _, m := range methods {
		if _, ok := cases[m]; !ok {
			t.Errorf("(*Host).%s has no case here: say how it is called and what it audits", m)
		}
	}
	var names []string
	for name := range cases {
		if !slices.Contains(methods, name) {
			t.Errorf("case %s names no method of *Host", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)

	for _, name := range names {
		c := cases[name]
		runs := map[string]*opCall{"allowed": &c.allowed, "denied": &c.denied, "bad": c.bad}
		for _, how := range []string{"allowed", "denied", "bad"} {
			cl := runs[how]
			if cl == nil {
				continue
			}
			t.Run(name+"/"+how, func(t *testing.T) {
				s = newSandbox(t)
				var d hostops.Decider = &policy{} // denies everything
				if how == "allowed" {
					d = &policy{rules: []rule{{id: "all-here", under: []string{s.root, "/proc", trueBin, "web"}}}}
				}
				h, _ := newHost(d)
				sink := &countingSink{}
				h.Audit = sink
				h.ServiceManager = []string{mgr}
				before := sink.count()
				err := cl.run(h)
				var got []string
				for _, ev := range sink.since(before) {
					if ev.Event != audit.Decision {
						t.Errorf("event %q, want only decision events", ev.Event)
					}
					got = append(got, ev.Decision)
				}
				if !slices.Equal(got, cl.lines) {
					t.Errorf("decision lines = %q, want %q", got, cl.lines)
				}
				checkKind(t, err, cl.kind, "")
				if how != "bad" {
					return
				}
				// Bad input with nowhere to write the line does nothing, and
				// with a line that cannot be written is INTERNAL.
				h.Audit = nil
				checkKind(t, cl.run(h), hostops.KindIOError, "no audit sink")
				h.Audit = &failingSink{}
				checkKind(t, cl.run(h), hostops.KindInternal, "audit log unwritable")
			})
		}
	}
}

// checkKind checks that err is an error of kind (nil for "") whose message
// holds msg.
func checkKind(t *testing.T, err error, kind, msg string) {
	t.Helper()
	var e *hostops.Error
	switch {
	case kind == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case kind == "":
	case !errors.As(err, &e):
		t.Errorf("error = %v, want one of kind %s", err, kind)
	case e.Kind != kind || !strings.Contains(e.Message, msg):
		t.Errorf("error = %s (%s), want %s holding %q", e.Kind, e.Message, kind, msg)
	}
}
