package authz

import (
	"net/netip"
	"testing"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// TestEntitiesConform checks every entity and request Decide builds against
// the schema, as cedar-go's validator sees them: strict validation of
// policies is only sound for conforming data.
func TestEntitiesConform(t *testing.T) {
	t.Parallel()
	v, err := newValidator()
	if err != nil {
		t.Fatal(err)
	}
	acts, err := schemaActions()
	if err != nil {
		t.Fatal(err)
	}
	principal := Principal{UserID: "agent-7", Role: "logs", Principals: []string{"logs"}, Serial: 1 << 63, Fingerprint: "SHA256:x", Auth: "key"}
	ctx := Context{SourceIP: netip.MustParseAddr("::ffff:10.0.0.1"), Now: time.Unix(1e9, 0), SessionID: "s", Transport: "sftp",
		Argv: "ls -l", Args: []string{"-l"}}
	n := int64(5)
	tests := []struct {
		name   string
		action string
		res    Resource
	}{
		{"file-bare", "read", Resource{Kind: KindFile, Path: "/var/log/app/a.log"}},
		{"file-full", "write", Resource{Kind: KindFile, Path: "/var/log/app/a.log", Exists: true, Size: &n, Mode: &n, UID: &n, Nlink: &n}},
		{"file-in-root", "stat", Resource{Kind: KindFile, Path: "/a"}},
		{"dir", "list", Resource{Kind: KindDir, Path: "/a/b/c"}},
		{"dir-root", "list", Resource{Kind: KindDir, Path: "/"}},
		{"command", "exec", Resource{Kind: KindCommand, Path: "/usr/bin/ls"}},
		{"service", "restart", Resource{Kind: KindService, Path: "nginx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := Request{Principal: principal, Action: tt.action, Resource: tt.res, Context: ctx}
			a := acts[tt.action]
			if msg := checkRequest(a, &req); msg != "" {
				t.Fatal(msg)
			}
			ents := &requestEntities{requestIDs: newRequestIDs(&req), req: req, needs: ^attrSet(0)}
			creq := types.Request{Principal: ents.principal, Action: a.uid, Resource: ents.resource, Context: func() types.Record { k := newContextKey(&req.Context, a.exec, ^attrSet(0)); return k.record() }()}
			if err := v.Request(creq); err != nil {
				t.Errorf("request: %v", err)
			}
			// Walk every entity reachable from the principal and resource.
			todo := []types.EntityUID{ents.principal, ents.resource}
			seen := map[types.EntityUID]bool{}
			for len(todo) > 0 {
				uid := todo[0]
				todo = todo[1:]
				if seen[uid] {
					continue
				}
				seen[uid] = true
				e, ok := ents.Get(uid)
				if !ok {
					t.Errorf("%s: not in the store", uid)
					continue
				}
				if e.UID != uid {
					t.Errorf("Get(%s).UID = %s", uid, e.UID)
				}
				if err := v.Entity(e); err != nil {
					t.Errorf("%s: %v", uid, err)
				}
				for p := range e.Parents.All() {
					todo = append(todo, p)
				}
			}
			if tt.res.Kind == KindFile || tt.res.Kind == KindDir {
				if !seen[types.NewEntityUID(typeDir, "/")] {
					t.Errorf("Dir::\"/\" not reachable: %v", seen)
				}
			}
		})
	}
}

func TestAncestorDepth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dirPath, dir string
		depth              int
		ok                 bool
	}{
		{"root-of-root", "/", "/", 0, true},
		{"root", "/a/b", "/", 0, true},
		{"self", "/a/b", "/a/b", 2, true},
		{"parent", "/a/b", "/a", 1, true},
		{"prefix-trap", "/var/log/application", "/var/log/app", 0, false},
		{"child", "/a", "/a/b", 0, false},
		{"trailing-slash", "/a/b", "/a/", 0, false},
		{"empty", "/a", "", 0, false},
		{"relative", "/a", "a", 0, false},
		{"no-dirs", "", "/", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, ok := ancestorDepth(tt.dirPath, tt.dir)
			if d != tt.depth || ok != tt.ok {
				t.Errorf("ancestorDepth(%q, %q) = %d, %v; want %d, %v", tt.dirPath, tt.dir, d, ok, tt.depth, tt.ok)
			}
		})
	}
}

// TestAttrNamesCoverSchema keeps attrNames in step with the schema: an
// attribute missing from it would never be built, and every policy reading
// it would err (and deny).
func TestAttrNamesCoverSchema(t *testing.T) {
	t.Parallel()
	r, err := parseSchema()
	if err != nil {
		t.Fatal(err)
	}
	check := func(where string, shape map[types.String]bool) {
		for name := range shape {
			if attrNames[name] == 0 {
				t.Errorf("%s: attribute %q missing from attrNames", where, name)
			}
		}
	}
	for et, e := range r.Entities {
		shape := map[types.String]bool{}
		for k := range e.Shape {
			shape[k] = true
		}
		check(string(et), shape)
	}
	for uid, a := range r.Actions {
		if a.AppliesTo == nil {
			continue
		}
		shape := map[types.String]bool{}
		for k := range a.AppliesTo.Context {
			shape[k] = true
		}
		check(uid.String()+" context", shape)
	}
}

func TestAttrsNamed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy string
		want   attrSet
	}{
		{"scope-only", `permit (principal, action, resource in Keyhole::Dir::"/a");`, 0},
		{"resource-access", `permit (principal, action, resource is Keyhole::File) when { resource.name == "x" };`, attrName},
		{"has-and-access", `permit (principal, action, resource is Keyhole::File) when { resource has size && resource.size > 1 };`, attrSize},
		{"principal-and-context", `permit (principal, action, resource) when { principal.serial > 1 && context.now > datetime("2020-01-01") };`, attrSerial | attrNow},
		{"context-whole", `permit (principal, action == Keyhole::Action::"read", resource) when { context == {source_ip: ip("1.2.3.4"), now: datetime("2020-01-01"), session_id: "", script_sha256: "", transport: ""} };`, attrContext},
		{"indexed-access", `permit (principal, action, resource is Keyhole::File) when { resource["uid"] == 0 };`, attrUID},
		{"unknown-names-ignored", `permit (principal, action, resource) when { {x: 1}.x == 1 };`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			list, err := cedar.NewPolicyListFromBytes("t.cedar", []byte(tt.policy))
			if err != nil {
				t.Fatal(err)
			}
			if got := attrsNamed((*xast.Policy)(list[0].AST())); got != tt.want {
				t.Errorf("attrsNamed = %b, want %b", got, tt.want)
			}
		})
	}
}
