package authz_test

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/keyhole-dev/keyhole/authz"
)

// Decide skips policies by scope, builds entities on demand and leaves out
// attributes no candidate names. TestDecideMatchesReference checks all of
// that against the plain way: every entity with every attribute in an
// EntityMap, the whole context, and cedar.Authorize over every policy.

// referencePolicies cover each scope form, attribute reads on every entity,
// `in` inside conditions, whole-context use, unless, and evaluation errors.
var referencePolicies = []string{
	`@id("any") permit (principal, action, resource);`,
	`@id("user-eq") permit (principal == Keyhole::User::"agent-7", action, resource);`,
	`@id("user-in-user") permit (principal in Keyhole::User::"ci", action, resource);`,
	`@id("role-in") permit (principal in Keyhole::Role::"logs", action, resource);`,
	`@id("is-user") forbid (principal is Keyhole::User, action == Keyhole::Action::"delete", resource);`,
	`@id("is-user-in-role") permit (principal is Keyhole::User in Keyhole::Role::"deploy", action in [Keyhole::Action::"write", Keyhole::Action::"create"], resource);`,
	`@id("file-eq") permit (principal, action, resource == Keyhole::File::"/var/log/app/a.log");`,
	`@id("dir-eq") permit (principal, action, resource == Keyhole::Dir::"/var/log/app");`,
	`@id("in-app") permit (principal, action, resource in Keyhole::Dir::"/var/log/app");`,
	`@id("in-root") forbid (principal, action == Keyhole::Action::"chmod", resource in Keyhole::Dir::"/");`,
	`@id("in-etc") forbid (principal, action, resource in Keyhole::Dir::"/etc");`,
	`@id("in-file") permit (principal, action, resource in Keyhole::File::"/var/log/app/a.log");`,
	`@id("is-file") permit (principal, action == Keyhole::Action::"read", resource is Keyhole::File);`,
	`@id("is-dir-in") permit (principal, action == Keyhole::Action::"list", resource is Keyhole::Dir in Keyhole::Dir::"/var");`,
	`@id("is-file-in") forbid (principal, action, resource is Keyhole::File in Keyhole::Dir::"/var/log/app/x");`,
	`@id("cmd-eq") permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::"/usr/bin/df");`,
	`@id("svc-eq") permit (principal, action in [Keyhole::Action::"status", Keyhole::Action::"restart"], resource == Keyhole::Service::"nginx");`,
	`@id("principal-attrs") permit (principal, action, resource)
when { principal.key_id == "agent-7" && principal.principals.contains("deploy") && principal.auth == "certificate" };`,
	`@id("serial") forbid (principal, action, resource) when { principal.serial < 0 || principal.fingerprint == "SHA256:bad" };`,
	`@id("file-attrs") permit (principal, action, resource is Keyhole::File)
when { resource.name like "*.log" && resource.exists } unless { resource has size && resource.size >= 1000 };`,
	`@id("file-mode") forbid (principal, action == Keyhole::Action::"write", resource is Keyhole::File)
when { resource has mode && resource.mode == 511 || resource has uid && resource.uid == 0 && resource has nlink && resource.nlink > 1 };`,
	`@id("path-like") permit (principal, action, resource is Keyhole::Dir) when { resource.path like "/var/*" };`,
	`@id("cmd-path") permit (principal, action == Keyhole::Action::"exec", resource) when { resource.path like "/usr/bin/*" && context.argv like "* -h*" };`,
	`@id("exec-args") forbid (principal, action == Keyhole::Action::"exec", resource) when { context.args.contains("-rf") };`,
	`@id("svc-name") permit (principal, action == Keyhole::Action::"stop", resource) when { resource.name == "nginx" };`,
	`@id("ctx") permit (principal, action, resource)
when { context.source_ip.isInRange(ip("10.0.0.0/8")) && context.now < datetime("2025-07-01") };`,
	`@id("ctx-strings") forbid (principal, action, resource) unless { context.transport == "script" || context.session_id == "s-2" || context.script_sha256 == "" };`,
	`@id("ctx-whole") permit (principal, action == Keyhole::Action::"stat", resource)
when { context == {source_ip: ip("10.1.2.3"), now: datetime("2025-06-01T12:00:00Z"), session_id: "s-1", script_sha256: "abc", transport: "script"} };`,
	`@id("in-in-condition") permit (principal, action, resource) when { resource in Keyhole::Dir::"/srv" && principal in Keyhole::Role::"deploy" };`,
	`@id("dir-literal") permit (principal, action == Keyhole::Action::"read", resource) when { Keyhole::Dir::"/var/log" in Keyhole::Dir::"/var" };`,
	`@id("overflow") forbid (principal, action, resource is Keyhole::File) when { resource has size && resource.size * 1000000000000 > 0 };`,
	`@id("missing-entity") permit (principal, action == Keyhole::Action::"mkdir", resource) when { Keyhole::Dir::"/srv/a".path == "/srv/a" };`,
}

func TestDecideMatchesReference(t *testing.T) {
	t.Parallel()
	reqs := referenceRequests()
	var sets [][]string
	for _, p := range referencePolicies {
		sets = append(sets, []string{p})
	}
	var noErrors []string
	for _, p := range referencePolicies {
		if !strings.Contains(p, "overflow") && !strings.Contains(p, "missing-entity") {
			noErrors = append(noErrors, p)
		}
	}
	sets = append(sets, referencePolicies, noErrors, indexedPolicies())
	for i, set := range sets {
		ps := mustLoad(t, strings.Join(set, "\n"))
		ref := parseReference(t, set)
		named := 0 // decisions that name a policy
		for _, req := range reqs {
			got := ps.Decide(req)
			want := referenceDecide(ref, req)
			if len(want.Policies) > 0 {
				named++
			}
			if got.Allow != want.Allow || !slices.Equal(sorted(got.Policies), sorted(want.Policies)) ||
				!slices.Equal(sorted(errorTexts(got.Errors)), sorted(errorTexts(want.Errors))) {
				t.Errorf("set %d (%s), %s %s %q as %s:\n got %+v\nwant %+v", i, ps.IDs()[0], req.Action, req.Resource.Kind, req.Resource.Path,
					req.Principal.Role, got, want)
			}
		}
		if named == 0 || named == len(reqs) && i < len(referencePolicies) && !strings.HasPrefix(set[0], `@id("any")`) {
			t.Errorf("set %d (%s) named in %d of %d decisions: the grid does not exercise it", i, ps.IDs()[0], named, len(reqs))
		}
	}
}

// indexedPolicies returns many policies across users, roles, directories
// at every depth of the grid, exact resources and the other scope forms,
// each with some action scope and some condition, so that the index of
// every action holds policies under every kind of key (and more than 64, so
// positions span several words).
func indexedPolicies() []string {
	principals := []string{
		`principal`,
		`principal == Keyhole::User::"agent-7"`,
		`principal == Keyhole::User::"ci"`,
		`principal in Keyhole::User::"ci"`,
		`principal in Keyhole::Role::"logs"`,
		`principal in Keyhole::Role::"deploy"`,
		`principal in Keyhole::Role::"ops"`,
		`principal is Keyhole::User`,
		`principal is Keyhole::User in Keyhole::Role::"deploy"`,
		`principal is Keyhole::User in Keyhole::Role::"logs"`,
	}
	fileDir := []string{
		`resource`,
		`resource in Keyhole::Dir::"/"`,
		`resource in Keyhole::Dir::"/var"`,
		`resource in Keyhole::Dir::"/var/log"`,
		`resource in Keyhole::Dir::"/var/log/app"`,
		`resource in Keyhole::Dir::"/var/log/application"`,
		`resource in Keyhole::Dir::"/var/log/app/x"`,
		`resource in Keyhole::Dir::"/var/log/app/x/y"`,
		`resource in Keyhole::Dir::"/var/lo"`,
		`resource in Keyhole::Dir::"/etc"`,
		`resource in Keyhole::Dir::"/srv/a"`,
		`resource == Keyhole::File::"/var/log/app/a.log"`,
		`resource == Keyhole::File::"/x"`,
		`resource == Keyhole::Dir::"/var/log/app"`,
		`resource == Keyhole::Dir::"/"`,
		`resource in Keyhole::File::"/etc/shadow"`,
		`resource is Keyhole::File`,
		`resource is Keyhole::Dir`,
		`resource is Keyhole::Dir in Keyhole::Dir::"/var"`,
		`resource is Keyhole::File in Keyhole::Dir::"/var/log/app"`,
		`resource is Keyhole::File in Keyhole::Dir::"/"`,
	}
	fileDirActions := []string{
		`action`,
		`action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat"]`,
		`action == Keyhole::Action::"write"`,
		`action`,
		`action in [Keyhole::Action::"delete", Keyhole::Action::"chmod", Keyhole::Action::"read"]`,
	}
	others := []string{
		`action == Keyhole::Action::"exec", resource == Keyhole::Command::"/usr/bin/df"`,
		`action == Keyhole::Action::"exec", resource`,
		`action in [Keyhole::Action::"status", Keyhole::Action::"restart"], resource == Keyhole::Service::"nginx"`,
		`action, resource is Keyhole::Service`,
	}
	conditions := []string{
		``,
		``,
		` when { context.source_ip.isInRange(ip("10.0.0.0/8")) }`,
		` when { principal.key_id == "ci" }`,
		``,
		` unless { context.now < datetime("2025-07-01") }`,
		` when { context.transport == "sftp" && principal.serial > 0 }`,
	}
	var out []string
	n := 0
	add := func(p, ar string) {
		effect := "permit"
		if n%5 == 4 {
			effect = "forbid"
		}
		out = append(out, fmt.Sprintf(`@id("ix-%d") %s (%s, %s)%s;`, n, effect, p, ar, conditions[n%len(conditions)]))
		n++
	}
	for i, p := range principals {
		for j, r := range fileDir {
			add(p, fileDirActions[(i+j)%len(fileDirActions)]+", "+r)
		}
		for _, o := range others {
			add(p, o)
		}
	}
	return out
}

// referenceDecide decides req the plain way.
func referenceDecide(ps *cedar.PolicySet, req authz.Request) authz.Decision {
	ents := cedar.EntityMap{}
	add := func(e cedar.Entity) { ents[e.UID] = e }
	p := req.Principal
	role := cedar.NewEntityUID("Keyhole::Role", cedar.String(p.Role))
	principal := cedar.NewEntityUID("Keyhole::User", cedar.String(p.UserID))
	var pset []cedar.Value
	for _, s := range p.Principals {
		pset = append(pset, cedar.String(s))
	}
	add(cedar.Entity{UID: role})
	add(cedar.Entity{UID: principal, Parents: cedar.NewEntityUIDSet(role), Attributes: cedar.NewRecord(cedar.RecordMap{
		"key_id": cedar.String(p.UserID), "principals": cedar.NewSet(pset...), "serial": cedar.Long(int64(p.Serial)),
		"fingerprint": cedar.String(p.Fingerprint), "auth": cedar.String(p.Auth),
	})})
	r := req.Resource
	dirUID := func(d string) cedar.EntityUID { return cedar.NewEntityUID("Keyhole::Dir", cedar.String(d)) }
	addDirs := func(d string) {
		for {
			e := cedar.Entity{UID: dirUID(d), Attributes: cedar.NewRecord(cedar.RecordMap{"path": cedar.String(d)})}
			if d != "/" {
				e.Parents = cedar.NewEntityUIDSet(dirUID(path.Dir(d)))
			}
			add(e)
			if d == "/" {
				return
			}
			d = path.Dir(d)
		}
	}
	var resource cedar.EntityUID
	switch r.Kind {
	case authz.KindFile:
		resource = cedar.NewEntityUID("Keyhole::File", cedar.String(r.Path))
		m := cedar.RecordMap{"path": cedar.String(r.Path), "name": cedar.String(path.Base(r.Path)), "exists": cedar.Boolean(r.Exists)}
		for k, v := range map[cedar.String]*int64{"size": r.Size, "mode": r.Mode, "uid": r.UID, "nlink": r.Nlink} {
			if v != nil {
				m[k] = cedar.Long(*v)
			}
		}
		add(cedar.Entity{UID: resource, Parents: cedar.NewEntityUIDSet(dirUID(path.Dir(r.Path))), Attributes: cedar.NewRecord(m)})
		addDirs(path.Dir(r.Path))
	case authz.KindDir:
		resource = dirUID(r.Path)
		addDirs(r.Path)
	case authz.KindCommand:
		resource = cedar.NewEntityUID("Keyhole::Command", cedar.String(r.Path))
		add(cedar.Entity{UID: resource, Attributes: cedar.NewRecord(cedar.RecordMap{"path": cedar.String(r.Path)})})
	case authz.KindService:
		resource = cedar.NewEntityUID("Keyhole::Service", cedar.String(r.Path))
		add(cedar.Entity{UID: resource, Attributes: cedar.NewRecord(cedar.RecordMap{"name": cedar.String(r.Path)})})
	}
	c := req.Context
	ctx := cedar.RecordMap{
		"source_ip":     cedar.IPAddr(netip.PrefixFrom(c.SourceIP.Unmap(), c.SourceIP.Unmap().BitLen())),
		"now":           cedar.NewDatetime(c.Now),
		"session_id":    cedar.String(c.SessionID),
		"script_sha256": cedar.String(c.ScriptSHA256),
		"transport":     cedar.String(c.Transport),
	}
	if req.Action == "exec" {
		var args []cedar.Value
		for _, a := range c.Args {
			args = append(args, cedar.String(a))
		}
		ctx["argv"], ctx["args"] = cedar.String(c.Argv), cedar.NewSet(args...)
	}
	dec, diag := cedar.Authorize(ps, ents, cedar.Request{
		Principal: principal,
		Action:    cedar.NewEntityUID("Keyhole::Action", cedar.String(req.Action)),
		Resource:  resource,
		Context:   cedar.NewRecord(ctx),
	})
	var d authz.Decision
	d.Allow = dec == cedar.Allow && len(diag.Errors) == 0
	if len(diag.Errors) == 0 || dec == cedar.Deny {
		for _, r := range diag.Reasons {
			d.Policies = append(d.Policies, string(r.PolicyID))
		}
	}
	for _, e := range diag.Errors {
		d.Policies = append(d.Policies, string(e.PolicyID))
		d.Errors = append(d.Errors, authz.PolicyError{Policy: string(e.PolicyID), Message: e.Message})
	}
	return d
}

// parseReference parses policies into a cedar.PolicySet named by @id.
func parseReference(t *testing.T, policies []string) *cedar.PolicySet {
	t.Helper()
	ps := cedar.NewPolicySet()
	for _, src := range policies {
		list, err := cedar.NewPolicyListFromBytes("ref.cedar", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list {
			ps.Add(cedar.PolicyID(p.Annotations()["id"]), p)
		}
	}
	return ps
}

// referenceRequests is a grid of valid requests: principals × resources ×
// the actions that apply to each × contexts.
func referenceRequests() []authz.Request {
	principals := []authz.Principal{
		{UserID: "agent-7", Role: "logs", Principals: []string{"logs", "deploy"}, Serial: 42, Fingerprint: "SHA256:ok", Auth: "certificate"},
		{UserID: "agent-7", Role: "deploy", Principals: []string{"logs", "deploy"}, Serial: 42, Fingerprint: "SHA256:ok", Auth: "certificate"},
		{UserID: "ci", Role: "deploy", Principals: []string{"deploy"}, Serial: 1 << 63, Fingerprint: "SHA256:bad", Auth: "key"},
	}
	size, big, mode, uid, nlink := int64(10), int64(1<<40), int64(0o777), int64(0), int64(2)
	resources := []authz.Resource{
		{Kind: authz.KindFile, Path: "/var/log/app/a.log", Exists: true, Size: &size},
		{Kind: authz.KindFile, Path: "/var/log/app/x/y/z.log", Exists: true},
		{Kind: authz.KindFile, Path: "/var/log/application/a.log", Exists: true, Size: &big},
		{Kind: authz.KindFile, Path: "/etc/shadow", Exists: true, Mode: &mode, UID: &uid, Nlink: &nlink},
		{Kind: authz.KindFile, Path: "/srv/a/new.txt"},
		{Kind: authz.KindFile, Path: "/x"},
		{Kind: authz.KindDir, Path: "/"},
		{Kind: authz.KindDir, Path: "/var"},
		{Kind: authz.KindDir, Path: "/var/log/app"},
		{Kind: authz.KindDir, Path: "/var/log/app/x"},
		{Kind: authz.KindDir, Path: "/srv/a"},
		{Kind: authz.KindCommand, Path: "/usr/bin/df"},
		{Kind: authz.KindCommand, Path: "/usr/local/bin/rm"},
		{Kind: authz.KindService, Path: "nginx"},
		{Kind: authz.KindService, Path: "sshd"},
	}
	actions := map[string][]string{
		authz.KindFile:    {"read", "list", "stat", "write", "create", "delete", "mkdir", "rename", "chmod"},
		authz.KindDir:     {"read", "list", "stat", "write", "create", "delete", "mkdir", "rename", "chmod"},
		authz.KindCommand: {"exec"},
		authz.KindService: {"status", "start", "stop", "restart", "reload"},
	}
	contexts := []authz.Context{
		{SourceIP: netip.MustParseAddr("10.1.2.3"), Now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), SessionID: "s-1", ScriptSHA256: "abc", Transport: "script",
			Argv: "df -h /var", Args: []string{"-h", "/var"}},
		{SourceIP: netip.MustParseAddr("2001:db8::1"), Now: time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC), SessionID: "s-9", ScriptSHA256: "def", Transport: "sftp",
			Argv: "rm -rf /tmp/x", Args: []string{"-rf", "/tmp/x"}},
	}
	var reqs []authz.Request
	for _, p := range principals {
		for _, r := range resources {
			for _, a := range actions[r.Kind] {
				for _, c := range contexts {
					reqs = append(reqs, authz.Request{Principal: p, Action: a, Resource: r, Context: c})
				}
			}
		}
	}
	return reqs
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func errorTexts(errs []authz.PolicyError) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}
