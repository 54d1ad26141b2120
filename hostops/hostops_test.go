package hostops_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
)

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// rule is one policy of the fake decider: it matches an action (any, when
// actions is empty) on a resource at or below one of under, and when, if
// set, says yes.
type rule struct {
	id      string
	forbid  bool
	erring  bool // evaluation errs whenever the rule applies
	actions []string
	under   []string
	when    func(authz.Resource) bool
}

func (r rule) matches(req authz.Request) bool {
	if len(r.actions) > 0 && !slices.Contains(r.actions, req.Action) {
		return false
	}
	in := false
	for _, u := range r.under {
		if req.Resource.Path == u || strings.HasPrefix(req.Resource.Path, strings.TrimSuffix(u, "/")+"/") {
			in = true
		}
	}
	return in && (r.when == nil || r.when(req.Resource))
}

// policy is a fake Decider with Cedar's shape: forbid and errors override
// permit, default deny. It records every request.
type policy struct {
	rules []rule
	mu    sync.Mutex
	reqs  []authz.Request
}

func (p *policy) Decide(req authz.Request) authz.Decision {
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	var forbids, permits []string
	var errs []authz.PolicyError
	for _, r := range p.rules {
		switch {
		case !r.matches(req):
		case r.erring:
			forbids = append(forbids, r.id)
			errs = append(errs, authz.PolicyError{Policy: r.id, Message: "boom"})
		case r.forbid:
			forbids = append(forbids, r.id)
		default:
			permits = append(permits, r.id)
		}
	}
	if len(forbids) > 0 {
		return authz.Decision{Policies: forbids, Errors: errs, Version: "v1"}
	}
	if len(permits) > 0 {
		return authz.Decision{Allow: true, Policies: permits, Version: "v1"}
	}
	return authz.Decision{Version: "v1"}
}

func (p *policy) requests() []authz.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs)
}

// decideFunc adapts a function to a Decider.
type decideFunc func(authz.Request) authz.Decision

func (f decideFunc) Decide(r authz.Request) authz.Decision { return f(r) }

// sandbox is a directory tree with an allowed and a forbidden part.
type sandbox struct {
	root, allowed, forbidden string
}

// newSandbox builds (paths relative to root):
//
//	allowed/public.txt          "public data\n" 0644
//	allowed/sub/nested.txt      "nested"
//	allowed/empty/
//	allowed/link-public      -> public.txt
//	allowed/link-secret      -> ../forbidden/secret
//	allowed/linkdir-forbidden-> <root>/forbidden
//	allowed/linkdir-sub      -> sub
//	allowed/dangling-allowed -> missing-target
//	allowed/dangling-forbidden -> <root>/forbidden/nope
//	allowed/dangling-chain   -> <root>/forbidden/link-missing
//	allowed/loop             -> loop
//	allowed/fifo, allowed/sock
//	forbidden/secret            "TOP SECRET" 0600
//	forbidden/sub/
//	forbidden/link-public    -> <root>/allowed/public.txt
//	forbidden/link-missing   -> gone
//	forbidden/loop           -> loop
//	allowed/link-forbidden-loop -> <root>/forbidden/loop
func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &sandbox{root: root, allowed: filepath.Join(root, "allowed"), forbidden: filepath.Join(root, "forbidden")}
	for _, d := range []string{"allowed/sub", "allowed/empty", "forbidden/sub"} {
		mustMkdir(t, s.path(d))
	}
	mustWrite(t, s.path("allowed/public.txt"), "public data\n", 0o644)
	mustWrite(t, s.path("allowed/sub/nested.txt"), "nested", 0o644)
	mustWrite(t, s.path("forbidden/secret"), "TOP SECRET", 0o600)
	links := map[string]string{
		"allowed/link-public":         "public.txt",
		"allowed/link-secret":         "../forbidden/secret",
		"allowed/linkdir-forbidden":   s.forbidden,
		"allowed/linkdir-sub":         "sub",
		"allowed/dangling-allowed":    "missing-target",
		"allowed/dangling-forbidden":  s.path("forbidden/nope"),
		"allowed/dangling-chain":      s.path("forbidden/link-missing"),
		"allowed/loop":                "loop",
		"forbidden/link-public":       s.path("allowed/public.txt"),
		"forbidden/link-missing":      "gone",
		"forbidden/loop":              "loop",
		"allowed/link-forbidden-loop": s.path("forbidden/loop"),
	}
	for name, to := range links {
		if err := os.Symlink(to, s.path(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(s.path("allowed/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	mkSocket(t, s.path("allowed/sock"))
	return s
}

func (s *sandbox) path(rel string) string { return filepath.Join(s.root, rel) }

// policy returns the sandbox's policy: read, list and stat below allowed
// (and anything extra), nothing below forbidden.
func (s *sandbox) policy(extra ...string) *policy {
	return &policy{rules: []rule{
		{id: "allow-sandbox", actions: []string{"read", "list", "stat"}, under: append([]string{s.allowed}, extra...)},
		{id: "no-forbidden", forbid: true, under: []string{s.forbidden}},
	}}
}

func mustMkdir(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t testing.TB, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// mkSocket leaves a unix socket file at p.
func mkSocket(t testing.TB, p string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: p}); err != nil {
		t.Fatal(err)
	}
}

// newHost returns a Host for agent-7 in role logs that audits to memory.
func newHost(d hostops.Decider) (*hostops.Host, *audit.Memory) {
	mem := &audit.Memory{}
	return &hostops.Host{
		Policy:    d,
		Principal: authz.Principal{UserID: "agent-7", Role: "logs", Principals: []string{"logs"}, Auth: "certificate"},
		Context:   authz.Context{SessionID: "s-1", ScriptSHA256: "abc", Transport: "script"},
		Audit:     mem,
		Event: audit.Event{Session: "s-1", User: "agent-7", Role: "logs", Source: "127.0.0.1",
			Fingerprint: "SHA256:xyz", Transport: "script", ScriptSHA256: "abc"},
		Clock: func() time.Time { return testNow },
	}, mem
}

// want is the expected outcome of one operation.
type want struct {
	kind     string // error kind; "" for success
	resource string // the canonical path, on the error and the audit event
	decision string // "allow" or "deny" on the audit event
	msg      string // the whole error message, if set
	contains string // a part of the error message, if set
	policies []string
}

// expect runs op and checks its error and its one audit event.
func expect(t *testing.T, mem *audit.Memory, action string, op func() error, w want) {
	t.Helper()
	before := len(mem.Events())
	err := op()
	events := mem.Events()[before:]
	if len(events) != 1 {
		t.Fatalf("got %d audit events, want exactly 1: %+v", len(events), events)
	}
	ev := events[0]
	if ev.Event != audit.Decision || ev.Action != action || ev.Resource != w.resource || ev.Decision != w.decision {
		t.Errorf("audit event = {event %q, action %q, resource %q, decision %q}, want {decision, %q, %q, %q}",
			ev.Event, ev.Action, ev.Resource, ev.Decision, action, w.resource, w.decision)
	}
	if w.kind == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var e *hostops.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *hostops.Error of kind %s", err, err, w.kind)
	}
	if e.Kind != w.kind {
		t.Errorf("kind = %s (%s), want %s", e.Kind, e.Message, w.kind)
	}
	if e.Action != action || e.Resource != w.resource {
		t.Errorf("error action, resource = %q, %q, want %q, %q", e.Action, e.Resource, action, w.resource)
	}
	if w.msg != "" && e.Message != w.msg {
		t.Errorf("message = %q, want %q", e.Message, w.msg)
	}
	if w.contains != "" && !strings.Contains(e.Message, w.contains) {
		t.Errorf("message = %q, want it to contain %q", e.Message, w.contains)
	}
	if w.policies != nil && !slices.Equal(e.Policies, w.policies) {
		t.Errorf("policies = %q, want %q", e.Policies, w.policies)
	}
	if w.kind == hostops.KindAccessDenied && !slices.Equal(ev.Policies, e.Policies) {
		t.Errorf("audit policies %q differ from error policies %q", ev.Policies, e.Policies)
	}
}
