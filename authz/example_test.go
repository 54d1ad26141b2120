package authz_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/keyhole-dev/keyhole/authz"
)

// A policy set loaded from files decides one request at a time; a forbid
// beats any permit, and the decision names the policies that decided.
func Example() {
	ps, err := authz.LoadFiles(map[string][]byte{
		"logs.cedar": []byte(`
@id("logs-read")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::"/var/log");

@id("no-secrets")
forbid (principal, action, resource in Keyhole::Dir::"/var/log/secret");
`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	who := authz.Principal{UserID: "agent-7", Role: "logs", Principals: []string{"logs"}, Auth: "certificate"}
	ctx := authz.Context{SourceIP: netip.MustParseAddr("192.0.2.1"), Now: time.Now(), Transport: "script"}
	for _, q := range []struct{ action, path string }{
		{"read", "/var/log/app/a.log"},
		{"read", "/var/log/secret/key"},
		{"write", "/var/log/app/a.log"},
	} {
		d := ps.Decide(authz.Request{
			Principal: who,
			Action:    q.action,
			Resource:  authz.Resource{Kind: authz.KindFile, Path: q.path, Exists: true},
			Context:   ctx,
		})
		fmt.Println(q.action, q.path, d.Allow, d.Policies)
	}
	// Output:
	// read /var/log/app/a.log true [logs-read]
	// read /var/log/secret/key false [no-secrets]
	// write /var/log/app/a.log false []
}

// A set that does not validate against the schema is refused whole, with
// the file and line of each problem.
func ExampleLoadFiles_refused() {
	_, err := authz.LoadFiles(map[string][]byte{
		"typo.cedar": []byte(`@id("typo")
permit (principal, action == Keyhole::Action::"raed", resource);
`),
	})
	fmt.Println(err)
	// Output:
	// authz: typo.cedar:1: policy "typo": unable to find an applicable action given the policy scope constraints
	// authz: typo.cedar:1: policy "typo": unrecognized action `Keyhole::Action::"raed"`
}
