package hostops_test

import (
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/hostops"
)

func TestAllowed(t *testing.T) {
	s := newSandbox(t)
	b := newBins(t)
	h, mem := cedarHost(t,
		`@id("read-sandbox") permit (principal, action in [Keyhole::Action::"read", Keyhole::Action::"write"], resource in Keyhole::Dir::"`+s.allowed+`");`,
		`@id("no-forbidden") forbid (principal, action, resource in Keyhole::Dir::"`+s.forbidden+`");`,
		permitExec("hello", b.path("hello")),
		`@id("web") permit (principal, action == Keyhole::Action::"restart", resource == Keyhole::Service::"web");`,
	)
	mgr, _ := fakeManager(t)
	h.ServiceManager = []string{mgr}
	tests := []struct {
		name, action, target string
		allow                bool
		kind                 string
		resource             string // audited
	}{
		{"read-allowed", "read", s.allowed + "/public.txt", true, "", s.allowed + "/public.txt"},
		{"read-missing-allowed", "read", s.allowed + "/missing", true, "", s.allowed + "/missing"},
		{"write-allowed", "write", s.allowed + "/new.txt", true, "", s.allowed + "/new.txt"},
		{"list-not-permitted", "list", s.allowed, false, "", s.allowed},
		{"read-symlink-to-forbidden", "read", s.allowed + "/link-secret", false, "", s.forbidden + "/secret"},
		{"read-dotdot-to-forbidden", "read", s.allowed + "/../forbidden/secret", false, "", s.forbidden + "/secret"},
		{"exec-allowed", "exec", b.path("link"), true, "", b.path("hello")},
		{"exec-denied", "exec", b.path("other"), false, "", b.path("other")},
		{"exec-relative", "exec", "./hello", false, hostops.KindInvalidArgument, "./hello"},
		{"service-allowed", "restart", "web", true, "", "web"},
		{"service-denied", "stop", "web", false, "", "web"},
		{"service-by-unit-id", "restart", "web.service", true, "", "web"},
		{"service-unresolvable", "restart", "unresolvable", false, "", "unresolvable"},
		{"service-bad-name", "restart", "-web", false, hostops.KindInvalidArgument, "-web"},
		{"relative-path", "read", "relative", false, hostops.KindInvalidArgument, "relative"},
		{"unknown-action", "frobnicate", "/tmp", false, hostops.KindInvalidArgument, "/tmp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(mem.Events())
			allow, err := h.Allowed(tc.action, tc.target)
			if errKind(err) != tc.kind || allow != tc.allow {
				t.Fatalf("Allowed = %v, %v, want %v, kind %q", allow, err, tc.allow, tc.kind)
			}
			ev := mem.Events()[before:]
			want := "deny"
			if tc.allow {
				want = "allow"
			}
			if len(ev) != 1 || ev[0].Action != tc.action || ev[0].Resource != tc.resource || ev[0].Decision != want {
				t.Fatalf("audit = %+v, want one %s of %s %s", ev, want, tc.action, tc.resource)
			}
			if tc.kind == "" && !strings.HasPrefix(ev[0].Reason, hostops.ReasonQuery) {
				t.Errorf("reason = %q, want it to say it was a query", ev[0].Reason)
			}
		})
	}
}
