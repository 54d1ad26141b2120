package authz_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/authz"
)

const (
	logsRead = `@id("logs-read")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::"/var/log/app");`
	noEtc     = `@id("no-etc") forbid (principal, action, resource in Keyhole::Dir::"/etc");`
	readAll   = `@id("read-all") permit (principal, action == Keyhole::Action::"read", resource);`
	permitAll = `@id("permit-all") permit (principal, action, resource);`
	// sizeOverflow errs (integer overflow) on files bigger than ~9 MB: it
	// passes strict validation and fails at evaluation time.
	sizeOverflow = `@id("size-overflow") forbid (principal, action, resource is Keyhole::File)
when { resource has size && resource.size * 1000000000000 > 5 };`
	// serialOverflow errs for every serial > 0.
	serialOverflow = `@id("serial-overflow") permit (principal, action, resource)
when { principal.serial + 9223372036854775807 > 0 };`
	// missingEntity reads an attribute of an entity that is in the store
	// only when the resource is under /opt: elsewhere it errs.
	missingEntity = `@id("missing-entity") forbid (principal, action, resource)
when { Keyhole::Dir::"/opt".path == "/nope" };`
)

func TestDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policies []string
		req      func(*authz.Request)
		allow    bool
		want     []string // Decision.Policies
		errs     []string // prefixes of Decision.Errors, in order
	}{
		{name: "allow", policies: []string{logsRead}, allow: true, want: []string{"logs-read"}},
		{name: "default-deny", policies: []string{logsRead},
			req: func(r *authz.Request) { r.Resource.Path = "/var/lib/app/a.db" }},
		{name: "empty-set-denies"},
		{name: "forbid-overrides-permit", policies: []string{readAll, noEtc},
			req: func(r *authz.Request) { r.Resource.Path = "/etc/shadow" }, want: []string{"no-etc"}},
		{name: "forbid-not-matching-leaves-permit", policies: []string{readAll, noEtc},
			allow: true, want: []string{"read-all"}},
		{name: "permits-listed-in-load-order", policies: []string{readAll, logsRead, permitAll},
			allow: true, want: []string{"read-all", "logs-read", "permit-all"}},
		{name: "erroring-forbid-denies", policies: []string{logsRead, sizeOverflow},
			req:  func(r *authz.Request) { r.Resource.Size = int64p(100_000_000) },
			want: []string{"size-overflow"}, errs: []string{"size-overflow: "}},
		{name: "non-erroring-forbid-does-not-match", policies: []string{logsRead, sizeOverflow},
			req: func(r *authz.Request) { r.Resource.Size = int64p(0) }, allow: true, want: []string{"logs-read"}},
		{name: "erroring-permit-denies", policies: []string{logsRead, serialOverflow},
			want: []string{"serial-overflow"}, errs: []string{"serial-overflow: "}},
		{name: "erroring-and-matching-forbid-both-listed", policies: []string{readAll, noEtc, sizeOverflow},
			req: func(r *authz.Request) {
				r.Resource.Path = "/etc/big"
				r.Resource.Size = int64p(1 << 40)
			},
			want: []string{"no-etc", "size-overflow"}, errs: []string{"size-overflow: "}},
		{name: "missing-entity-errs-and-denies", policies: []string{readAll, missingEntity},
			want: []string{"missing-entity"}, errs: []string{"missing-entity: "}},
		{name: "ancestor-entity-is-in-store", policies: []string{readAll, missingEntity},
			req: func(r *authz.Request) { r.Resource.Path = "/opt/x/y" }, allow: true, want: []string{"read-all"}},

		// Directory ancestry.
		{name: "dir-in-matches-child", policies: []string{logsRead},
			req: func(r *authz.Request) { r.Resource.Path = "/var/log/app/a.log" }, allow: true, want: []string{"logs-read"}},
		{name: "dir-in-matches-deep-descendant", policies: []string{logsRead},
			req: func(r *authz.Request) { r.Resource.Path = "/var/log/app/x/y/z.log" }, allow: true, want: []string{"logs-read"}},
		{name: "dir-in-no-prefix-trap", policies: []string{logsRead},
			req: func(r *authz.Request) { r.Resource.Path = "/var/log/application/a.log" }},
		{name: "dir-in-no-prefix-trap-dir", policies: []string{logsRead},
			req: func(r *authz.Request) {
				r.Action, r.Resource = "list", authz.Resource{Kind: authz.KindDir, Path: "/var/log/application"}
			}},
		{name: "dir-in-matches-dir-itself", policies: []string{logsRead},
			req: func(r *authz.Request) {
				r.Action, r.Resource = "list", authz.Resource{Kind: authz.KindDir, Path: "/var/log/app"}
			},
			allow: true, want: []string{"logs-read"}},
		{name: "dir-in-not-parent", policies: []string{logsRead},
			req: func(r *authz.Request) {
				r.Action, r.Resource = "list", authz.Resource{Kind: authz.KindDir, Path: "/var/log"}
			}},
		{name: "root-dir-contains-everything", policies: []string{`@id("root") permit (principal, action, resource in Keyhole::Dir::"/");`},
			allow: true, want: []string{"root"}},
		{name: "root-dir-is-in-root", policies: []string{`@id("root") permit (principal, action, resource in Keyhole::Dir::"/");`},
			req:   func(r *authz.Request) { r.Action, r.Resource = "list", authz.Resource{Kind: authz.KindDir, Path: "/"} },
			allow: true, want: []string{"root"}},
		{name: "file-is-dir-type-test", policies: []string{`@id("dirs") permit (principal, action, resource is Keyhole::Dir in Keyhole::Dir::"/var");`}},
		{name: "ancestor-attribute-readable", policies: []string{`@id("anc") permit (principal, action, resource)
when { Keyhole::Dir::"/var/log".path == "/var/log" };`}, allow: true, want: []string{"anc"}},

		// Roles: the login name picks the one role a session acts in.
		{name: "role-membership-allows", policies: []string{logsRead}, allow: true, want: []string{"logs-read"}},
		{name: "other-role-denied", policies: []string{logsRead},
			req: func(r *authz.Request) { r.Principal.Role = "deploy" }},
		{name: "principal-eq-user", policies: []string{`@id("me") permit (principal == Keyhole::User::"agent-7", action, resource);`},
			allow: true, want: []string{"me"}},
		{name: "principal-attributes", policies: []string{`@id("attrs") permit (principal, action, resource)
when { principal.key_id == "agent-7" && principal.serial == 42 && principal.auth == "certificate" &&
       principal.fingerprint like "SHA256:*" && principal.principals.contains("deploy") };`},
			allow: true, want: []string{"attrs"}},
		{name: "serial-above-long-reads-negative", policies: []string{`@id("neg") permit (principal, action, resource) when { principal.serial < 0 };`},
			req: func(r *authz.Request) { r.Principal.Serial = 1 << 63 }, allow: true, want: []string{"neg"}},

		// Resource attributes.
		{name: "file-attributes", policies: []string{`@id("attrs") permit (principal, action, resource is Keyhole::File)
when { resource.path == "/var/log/app/a.log" && resource.name == "a.log" && resource.exists &&
       resource has size && resource.size < 100 && resource has mode && resource.mode == 420 &&
       resource has uid && resource.uid == 0 && resource has nlink && resource.nlink == 1 };`},
			req: func(r *authz.Request) {
				r.Resource.Size, r.Resource.Mode, r.Resource.UID, r.Resource.Nlink = int64p(10), int64p(0o644), int64p(0), int64p(1)
			},
			allow: true, want: []string{"attrs"}},
		{name: "optional-attribute-absent", policies: []string{`@id("small") permit (principal, action, resource is Keyhole::File)
when { resource has size && resource.size < 100 };`}},
		{name: "file-not-exists", policies: []string{`@id("create") permit (principal, action == Keyhole::Action::"create", resource is Keyhole::File)
when { !resource.exists };`},
			req: func(r *authz.Request) { r.Action, r.Resource.Exists = "create", false }, allow: true, want: []string{"create"}},
		{name: "dir-attribute", policies: []string{`@id("d") permit (principal, action, resource is Keyhole::Dir) when { resource.path == "/tmp" };`},
			req: func(r *authz.Request) {
				r.Action, r.Resource = "mkdir", authz.Resource{Kind: authz.KindDir, Path: "/tmp"}
			},
			allow: true, want: []string{"d"}},
		{name: "service", policies: []string{`@id("svc") permit (principal, action in [Keyhole::Action::"status", Keyhole::Action::"restart"], resource)
when { resource.name == "nginx" };`},
			req: func(r *authz.Request) {
				r.Action, r.Resource = "restart", authz.Resource{Kind: authz.KindService, Path: "nginx"}
			},
			allow: true, want: []string{"svc"}},
		{name: "service-by-uid", policies: []string{`@id("svc") permit (principal, action, resource == Keyhole::Service::"nginx");`},
			req: func(r *authz.Request) {
				r.Action, r.Resource = "status", authz.Resource{Kind: authz.KindService, Path: "nginx"}
			},
			allow: true, want: []string{"svc"}},

		// Context.
		{name: "source-ip-in-range", policies: []string{`@id("lan") permit (principal, action, resource)
when { context.source_ip.isInRange(ip("10.0.0.0/8")) };`}, allow: true, want: []string{"lan"}},
		{name: "source-ip-out-of-range", policies: []string{`@id("lan") permit (principal, action, resource)
when { context.source_ip.isInRange(ip("10.0.0.0/8")) };`},
			req: func(r *authz.Request) { r.Context.SourceIP = netip.MustParseAddr("192.0.2.1") }},
		{name: "source-ip-4in6-unmapped", policies: []string{`@id("lan") permit (principal, action, resource)
when { context.source_ip.isInRange(ip("10.0.0.0/8")) };`},
			req:   func(r *authz.Request) { r.Context.SourceIP = netip.MustParseAddr("::ffff:10.9.9.9") },
			allow: true, want: []string{"lan"}},
		{name: "source-ip-ipv6", policies: []string{`@id("v6") permit (principal, action, resource)
when { context.source_ip.isLoopback() && context.source_ip.isIpv6() };`},
			req:   func(r *authz.Request) { r.Context.SourceIP = netip.MustParseAddr("::1") },
			allow: true, want: []string{"v6"}},
		{name: "source-ip-invalid-is-unspecified", policies: []string{`@id("unknown") permit (principal, action, resource)
when { context.source_ip == ip("0.0.0.0") };`},
			req:   func(r *authz.Request) { r.Context.SourceIP = netip.Addr{} },
			allow: true, want: []string{"unknown"}},
		{name: "now-before-deadline", policies: []string{`@id("window") permit (principal, action, resource)
when { context.now < datetime("2025-07-01") };`}, allow: true, want: []string{"window"}},
		{name: "now-after-deadline", policies: []string{`@id("window") permit (principal, action, resource)
when { context.now < datetime("2025-07-01") };`},
			req: func(r *authz.Request) { r.Context.Now = time.Date(2025, 7, 1, 0, 0, 0, 1e6, time.UTC) }},
		{name: "zero-now-is-current-time", policies: []string{`@id("window") permit (principal, action, resource)
when { context.now < datetime("2025-07-01") };`},
			req: func(r *authz.Request) { r.Context.Now = time.Time{} }},
		{name: "session-transport-script", policies: []string{`@id("ctx") permit (principal, action, resource)
when { context.transport == "sftp" && context.session_id == "s-0001" && context.script_sha256 like "e3b0*" };`},
			req: func(r *authz.Request) { r.Context.Transport = "sftp" }, allow: true, want: []string{"ctx"}},
		{name: "exec-argv-exact", policies: []string{execDf},
			req: execReq("df -h /var"), allow: true, want: []string{"exec-df"}},
		{name: "exec-argv-mismatch", policies: []string{execDf},
			req: execReq("df -h /"), want: nil},
		{name: "exec-args-contains", policies: []string{`@id("no-rf") forbid (principal, action == Keyhole::Action::"exec", resource)
when { context.args.contains("-rf") };`, `@id("rm") permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::"/usr/bin/rm");`},
			req: func(r *authz.Request) {
				execReq("rm -rf /tmp/x")(r)
				r.Resource.Path = "/usr/bin/rm"
			},
			want: []string{"no-rf"}},

		// Malformed requests deny before evaluation.
		{name: "unknown-action-denies", policies: []string{permitAll},
			req: func(r *authz.Request) { r.Action = "raed" }, errs: []string{`authz: unknown action "raed"`}},
		{name: "action-kind-mismatch-denies", policies: []string{permitAll},
			req: func(r *authz.Request) { r.Resource.Kind = authz.KindCommand }, errs: []string{`authz: action "read" does not apply`}},
		{name: "unknown-kind-denies", policies: []string{permitAll},
			req: func(r *authz.Request) { r.Resource.Kind = "Socket" }, errs: []string{`authz: action "read" does not apply`}},
		{name: "empty-user-denies", policies: []string{permitAll},
			req: func(r *authz.Request) { r.Principal.UserID = "" }, errs: []string{"authz: empty user id"}},
		{name: "empty-role-denies", policies: []string{permitAll},
			req: func(r *authz.Request) { r.Principal.Role = "" }, errs: []string{"authz: empty role"}},
		{name: "empty-service-denies", policies: []string{permitAll},
			req:  func(r *authz.Request) { r.Action, r.Resource = "status", authz.Resource{Kind: authz.KindService} },
			errs: []string{"authz: invalid service name"}},
		{name: "relative-path-denies", policies: []string{permitAll},
			req: func(r *authz.Request) { r.Resource.Path = "var/log/a.log" }, errs: []string{"authz: file path"}},
		{name: "unclean-path-denies", policies: []string{permitAll},
			req: func(r *authz.Request) { r.Resource.Path = "/var/log/app/../../../etc/shadow" }, errs: []string{"authz: file path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ps := mustLoad(t, tt.policies...)
			req := readReq("/var/log/app/a.log")
			if tt.req != nil {
				tt.req(&req)
			}
			d := ps.Decide(req)
			if d.Allow != tt.allow {
				t.Errorf("Allow = %v, want %v (decision %+v)", d.Allow, tt.allow, d)
			}
			if !slices.Equal(d.Policies, tt.want) {
				t.Errorf("Policies = %q, want %q", d.Policies, tt.want)
			}
			if len(d.Errors) != len(tt.errs) {
				t.Fatalf("Errors = %q, want prefixes %q", d.Errors, tt.errs)
			}
			for i, e := range d.Errors {
				if !strings.HasPrefix(e.Error(), tt.errs[i]) {
					t.Errorf("Errors[%d] = %q, want prefix %q", i, e, tt.errs[i])
				}
			}
			if d.Version != ps.Version() {
				t.Errorf("Version = %q, want %q", d.Version, ps.Version())
			}
		})
	}
}

const execDf = `@id("exec-df") permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::"/usr/bin/df")
when { context.argv == "df -h /var" };`

// execReq turns a request into exec of /usr/bin/df with argv.
func execReq(argv string) func(*authz.Request) {
	return func(r *authz.Request) {
		r.Action = "exec"
		r.Resource = authz.Resource{Kind: authz.KindCommand, Path: "/usr/bin/df"}
		r.Context.Argv = argv
		r.Context.Args = strings.Fields(argv)[1:]
	}
}

func TestDecideNilAndZeroSet(t *testing.T) {
	t.Parallel()
	for name, ps := range map[string]*authz.PolicySet{"nil": nil, "zero": {}} {
		d := ps.Decide(readReq("/var/log/app/a.log"))
		if d.Allow || len(d.Policies) != 0 || len(d.Errors) != 0 {
			t.Errorf("%s set: Decide = %+v, want default deny", name, d)
		}
		if want := mustLoad(t).Version(); d.Version != want || ps.Version() != want {
			t.Errorf("%s set: Version = %q, want the empty set's %q", name, d.Version, want)
		}
		if ps.Len() != 0 || len(ps.IDs()) != 0 {
			t.Errorf("%s set: Len = %d, IDs = %q", name, ps.Len(), ps.IDs())
		}
	}
}

func TestDecideConcurrent(t *testing.T) {
	t.Parallel()
	ps := mustLoad(t, logsRead, noEtc, sizeOverflow)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				req := readReq("/var/log/app/a.log")
				if (i+j)%2 == 1 {
					req.Resource.Path = "/etc/passwd"
				}
				d := ps.Decide(req)
				if d.Allow != ((i+j)%2 == 0) {
					t.Errorf("goroutine %d, request %d: Allow = %v", i, j, d.Allow)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestDecideNoStaleReuse guards the set's reuse of the last principal entity
// and context record: a request that differs in anything they are built
// from, even through a slice the caller changed in place, gets fresh ones.
func TestDecideNoStaleReuse(t *testing.T) {
	t.Parallel()
	ps := mustLoad(t, `@id("deploy") permit (principal, action == Keyhole::Action::"exec", resource)
when { principal.principals.contains("deploy") && context.args.contains("-h") && context.session_id == "s-1" };`)
	req := readReq("/usr/bin/df")
	execReq("df -h")(&req)
	principals, args := []string{"deploy"}, []string{"-h"}
	req.Principal.Principals, req.Context.Args = principals, args
	req.Context.SessionID = "s-1"
	steps := []struct {
		name   string
		change func()
		allow  bool
	}{
		{"first", func() {}, true},
		{"same-again", func() {}, true},
		{"principals-changed-in-place", func() { principals[0] = "logs" }, false},
		{"principals-restored", func() { principals[0] = "deploy" }, true},
		{"args-changed-in-place", func() { args[0] = "-x" }, false},
		{"args-restored", func() { args[0] = "-h" }, true},
		{"session-changed", func() { req.Context.SessionID = "s-2" }, false},
		{"session-restored", func() { req.Context.SessionID = "s-1" }, true},
	}
	for _, s := range steps {
		s.change()
		if d := ps.Decide(req); d.Allow != s.allow {
			t.Errorf("%s: Decide = %+v, want allow %v", s.name, d, s.allow)
		}
	}
}

// TestDecideConcurrentPrincipals decides for many principals at once, each
// allowed only with its own context, so a principal or context reused
// across goroutines shows as a wrong decision.
func TestDecideConcurrentPrincipals(t *testing.T) {
	t.Parallel()
	ps := mustLoad(t, `@id("own") permit (principal, action, resource)
when { principal.key_id == context.session_id && principal.principals.contains(context.transport) };`)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 300 {
				req := readReq("/var/log/app/a.log")
				id := fmt.Sprintf("u%d", i)
				req.Principal.UserID, req.Principal.Principals = id, []string{id}
				req.Context.SessionID, req.Context.Transport = id, id
				want := j%3 != 0
				if !want {
					req.Context.SessionID = fmt.Sprintf("u%d", (i+1)%8)
				}
				req.Context.Now = req.Context.Now.Add(time.Duration(j) * time.Millisecond)
				if d := ps.Decide(req); d.Allow != want {
					t.Errorf("goroutine %d, request %d: Decide = %+v, want allow %v", i, j, d, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
