package hostops_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
)

// TestDenialMessages checks the wording of ACCESS_DENIED for each shape of
// deny, and that an allow carrying evaluation errors denies.
func TestDenialMessages(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	p := s.path("allowed/public.txt")
	prefix := `read ` + p + ` denied for User::"agent-7" in Role::"logs" `
	tests := []struct {
		name     string
		dec      authz.Decision
		msg      string
		policies []string
		reason   string
	}{
		{name: "one-forbid", dec: authz.Decision{Policies: []string{"no-etc"}},
			msg: prefix + "(policy no-etc)", policies: []string{"no-etc"}},
		{name: "several-forbids", dec: authz.Decision{Policies: []string{"a", "b"}},
			msg: prefix + "(policies a, b)", policies: []string{"a", "b"}},
		{name: "default-deny", dec: authz.Decision{},
			msg: prefix + "(no policy permits it)"},
		{name: "erroring-policy", dec: authz.Decision{Policies: []string{"bad"}, Errors: []authz.PolicyError{{Policy: "bad", Message: "attribute size missing"}}},
			msg: prefix + "(policy bad erred)", policies: []string{"bad"}, reason: "bad: attribute size missing"},
		{name: "forbid-and-erroring-policy",
			dec: authz.Decision{Policies: []string{"no-etc", "bad", "worse"}, Errors: []authz.PolicyError{{Policy: "bad", Message: "x"}, {Policy: "worse", Message: "y"}}},
			msg: prefix + "(policy no-etc; policies bad, worse erred)", policies: []string{"no-etc", "bad", "worse"},
			reason: "bad: x; worse: y"},
		{name: "erroring-policy-not-listed", dec: authz.Decision{Errors: []authz.PolicyError{{Policy: "bad", Message: "x"}}},
			msg: prefix + "(policy bad erred)", reason: "bad: x"},
		{name: "malformed-request", dec: authz.Decision{Errors: []authz.PolicyError{{Message: "authz: empty role"}}},
			msg: prefix + "(a policy erred)", reason: "authz: empty role"},
		{name: "allow-with-errors-denies", dec: authz.Decision{Allow: true, Policies: []string{"ok"}, Errors: []authz.PolicyError{{Policy: "bad", Message: "x"}}},
			msg: prefix + "(policy ok; policy bad erred)", policies: []string{"ok"}, reason: "bad: x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.dec.Version = "sha256:v9"
			h, mem := newHost(decideFunc(func(authz.Request) authz.Decision { return tc.dec }))
			_, err := h.Read(p, 0)
			var e *hostops.Error
			if !errors.As(err, &e) || e.Kind != hostops.KindAccessDenied {
				t.Fatalf("err = %v, want ACCESS_DENIED", err)
			}
			if e.Message != tc.msg || !slices.Equal(e.Policies, tc.policies) {
				t.Errorf("error = %q %q, want %q %q", e.Message, e.Policies, tc.msg, tc.policies)
			}
			if e.Error() != "ACCESS_DENIED: "+tc.msg {
				t.Errorf("Error() = %q", e.Error())
			}
			ev := mem.Events()
			if len(ev) != 1 {
				t.Fatalf("%d events, want 1", len(ev))
			}
			if ev[0].Decision != "deny" || ev[0].Reason != tc.reason || ev[0].PolicyVersion != "sha256:v9" ||
				!slices.Equal(ev[0].Policies, tc.dec.Policies) {
				t.Errorf("event = %+v", ev[0])
			}
		})
	}
}

func TestNoPolicyDenies(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	h, mem := newHost(nil)
	_, err := h.Read(s.path("allowed/public.txt"), 0)
	var e *hostops.Error
	if !errors.As(err, &e) || e.Kind != hostops.KindAccessDenied {
		t.Fatalf("err = %v, want ACCESS_DENIED", err)
	}
	if ev := mem.Events(); len(ev) != 1 || ev[0].Decision != "deny" || ev[0].Reason == "" {
		t.Fatalf("events = %+v", ev)
	}
}

func TestNoAuditSinkRefuses(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	h, _ := newHost(s.policy())
	h.Audit = nil
	if _, err := h.Read(s.path("allowed/public.txt"), 0); err == nil {
		t.Fatal("read without an audit sink succeeded")
	}
}

// TestAuditEvent checks that the event is the template plus the decision.
func TestAuditEvent(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	h, mem := newHost(s.policy())
	h.Event.Request = "exec"
	h.Event.Exit = audit.Int(3)
	if _, err := h.Read(s.path("allowed/public.txt"), 0); err != nil {
		t.Fatal(err)
	}
	ev := mem.Events()
	if len(ev) != 1 {
		t.Fatalf("%d events", len(ev))
	}
	got := ev[0]
	wantEv := audit.Event{Time: testNow, Event: audit.Decision, Session: "s-1", User: "agent-7", Role: "logs",
		Source: "127.0.0.1", Fingerprint: "SHA256:xyz", Transport: "script", Request: "exec", Action: "read",
		Resource: s.path("allowed/public.txt"), Decision: "allow", Policies: []string{"allow-sandbox"},
		PolicyVersion: "v1", ScriptSHA256: "abc"}
	if !slices.Equal(got.Policies, wantEv.Policies) {
		t.Errorf("policies = %q", got.Policies)
	}
	got.Policies, wantEv.Policies = nil, nil
	if !got.Time.Equal(wantEv.Time) {
		t.Errorf("time = %v", got.Time)
	}
	got.Time, wantEv.Time = time.Time{}, time.Time{}
	if got.Exit != nil {
		t.Errorf("exit = %d, want none on a decision", *got.Exit)
	}
	got.Exit = nil
	if !equalEvents(got, wantEv) {
		t.Errorf("event = %+v\nwant %+v", got, wantEv)
	}
}

func equalEvents(a, b audit.Event) bool {
	return a.Event == b.Event && a.Session == b.Session && a.User == b.User && a.Role == b.Role &&
		a.Source == b.Source && a.Fingerprint == b.Fingerprint && a.Transport == b.Transport &&
		a.Request == b.Request && a.Action == b.Action && a.Resource == b.Resource &&
		a.Decision == b.Decision && a.PolicyVersion == b.PolicyVersion && a.ScriptSHA256 == b.ScriptSHA256 &&
		a.Reason == b.Reason
}

// TestRequest checks what the Decider is asked.
func TestRequest(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	ptr := func(n int64) *int64 { return &n }
	tests := []struct {
		name   string
		path   string
		action string
		op     func(h *hostops.Host, p string) error
		res    authz.Resource
		// alsoDir: a path that names nothing is asked about twice, as
		// res (a File) and as a Dir of the same path.
		alsoDir bool
	}{
		{name: "existing-file", path: s.path("allowed/link-secret"), action: "read",
			op:  func(h *hostops.Host, p string) error { _, err := h.Read(p, 0); return err },
			res: authz.Resource{Kind: authz.KindFile, Path: s.path("forbidden/secret"), Exists: true, Size: ptr(10), Mode: ptr(0o600), Nlink: ptr(1)}},
		{name: "directory", path: s.path("allowed/linkdir-sub"), action: "list",
			op:  func(h *hostops.Host, p string) error { _, err := h.List(p); return err },
			res: authz.Resource{Kind: authz.KindDir, Path: s.path("allowed/sub"), Exists: true}},
		{name: "missing-file", path: s.allowed + "/missing/../x", action: "stat",
			op:  func(h *hostops.Host, p string) error { _, err := h.Stat(p); return err },
			res: authz.Resource{Kind: authz.KindFile, Path: s.path("allowed/missing")}, alsoDir: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pol := s.policy()
			h, _ := newHost(pol)
			tc.op(h, tc.path)
			reqs := pol.requests()
			want := 1
			if tc.alsoDir {
				want = 2
			}
			if len(reqs) != want {
				t.Fatalf("%d requests, want %d", len(reqs), want)
			}
			if tc.alsoDir {
				if d := reqs[1].Resource; d.Kind != authz.KindDir || d.Path != tc.res.Path || d.Exists || d.Size != nil {
					t.Errorf("second resource = %s, want Dir %s", fmtRes(d), tc.res.Path)
				}
			}
			r := reqs[0]
			if r.Action != tc.action || r.Principal.UserID != "agent-7" || r.Principal.Role != "logs" {
				t.Errorf("request = %+v", r)
			}
			if !r.Context.Now.Equal(testNow) || r.Context.Transport != "script" || r.Context.SessionID != "s-1" ||
				r.Context.ScriptSHA256 != "abc" {
				t.Errorf("context = %+v", r.Context)
			}
			got := r.Resource
			if got.Kind != tc.res.Kind || got.Path != tc.res.Path || got.Exists != tc.res.Exists ||
				!eqPtr(got.Size, tc.res.Size) || !eqPtr(got.Mode, tc.res.Mode) || !eqPtr(got.Nlink, tc.res.Nlink) {
				t.Errorf("resource = %s\nwant %s", fmtRes(got), fmtRes(tc.res))
			}
			if tc.res.Size != nil && (got.UID == nil || *got.UID != int64(uidOf(t, tc.res.Path))) {
				t.Errorf("uid = %v", got.UID)
			}
		})
	}
}

func eqPtr(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func fmtRes(r authz.Resource) string {
	f := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return fmt.Sprintf("{%s %s exists=%v size=%v mode=%o uid=%v nlink=%v}", r.Kind, r.Path, r.Exists, f(r.Size), f(r.Mode), f(r.UID), f(r.Nlink))
}

func uidOf(t *testing.T, p string) uint32 {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid
}

// TestAuditReasonWhenNothingIsDone: an allowed operation that finds nothing
// to act on says why on its audit line.
func TestAuditReasonWhenNothingIsDone(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	h, mem := newHost(s.policy())
	_, err := h.Read(s.allowed+"/missing", 0)
	var e *hostops.Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	ev := mem.Events()
	if len(ev) != 1 || ev[0].Decision != "allow" || ev[0].Reason != e.Message {
		t.Fatalf("events = %+v, want one allow with reason %q", ev, e.Message)
	}
}
