package authz_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchUnscoped returns n policies that all apply to read, half of them
// with no principal or directory scope and conditions on context and
// attributes, so Decide evaluates half the set in cedar-go for every
// request: a pessimistic set. The request of BenchmarkDecide matches the
// last policy only.
func benchUnscoped(n int) string {
	var b strings.Builder
	for i := range n - 1 {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, `@id("p%d") permit (principal in Keyhole::Role::"role%d", action in [Keyhole::Action::"read", Keyhole::Action::"list"], resource in Keyhole::Dir::"/srv/a/b/c%d");`+"\n", i, i, i)
		case 1:
			fmt.Fprintf(&b, `@id("p%d") forbid (principal, action, resource in Keyhole::Dir::"/etc/d%d");`+"\n", i, i)
		case 2:
			fmt.Fprintf(&b, `@id("p%d") permit (principal, action == Keyhole::Action::"read", resource is Keyhole::File) when { context.source_ip.isInRange(ip("192.0.2.0/24")) && resource.name == "f%d" };`+"\n", i, i)
		case 3:
			fmt.Fprintf(&b, `@id("p%d") forbid (principal, action, resource is Keyhole::File) when { resource.path like "/tmp/%d/*" || (resource has size && resource.size > %d000000000) };`+"\n", i, i, i+1)
		}
	}
	fmt.Fprintf(&b, `@id("p%d") permit (principal in Keyhole::Role::"logs", action == Keyhole::Action::"read", resource in Keyhole::Dir::"/srv/a/b/c/d/e/f") when { context.now > datetime("2020-01-01") };`+"\n", n-1)
	return b.String()
}

// benchScoped returns n policies as a team would write them: each scoped to
// a role and a directory tree, one in four with a condition. The request of
// BenchmarkDecide matches the last two (a permit on its tree, with a
// condition on context and one on the file, and an unrelated forbid).
func benchScoped(n int) string {
	var b strings.Builder
	for i := range n - 2 {
		switch i % 4 {
		case 0, 1:
			fmt.Fprintf(&b, `@id("p%d") permit (principal in Keyhole::Role::"team%d", action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat"], resource in Keyhole::Dir::"/srv/team%d");`+"\n", i, i, i)
		case 2:
			fmt.Fprintf(&b, `@id("p%d") forbid (principal, action, resource in Keyhole::Dir::"/srv/a/secret%d");`+"\n", i, i)
		case 3:
			fmt.Fprintf(&b, `@id("p%d") permit (principal in Keyhole::Role::"team%d", action == Keyhole::Action::"read", resource in Keyhole::Dir::"/srv/a/b") when { context.source_ip.isInRange(ip("10.%d.0.0/16")) };`+"\n", i, i, i%256)
		}
	}
	fmt.Fprintf(&b, `@id("p%d") permit (principal in Keyhole::Role::"logs", action in [Keyhole::Action::"read", Keyhole::Action::"list"], resource in Keyhole::Dir::"/srv/a/b") when { context.source_ip.isInRange(ip("10.0.0.0/8")) && resource has size && resource.size < 1000000 };`+"\n", n-2)
	fmt.Fprintf(&b, `@id("p%d") forbid (principal, action == Keyhole::Action::"read", resource is Keyhole::File in Keyhole::Dir::"/srv") when { resource.name like "*.key" };`+"\n", n-1)
	return b.String()
}

func BenchmarkDecide(b *testing.B) {
	shapes := []struct {
		name     string
		policies func(int) string
	}{
		{"scoped", benchScoped},
		{"unscoped", benchUnscoped},
	}
	for _, shape := range shapes {
		for _, n := range []int{10, 20, 100, 1000} {
			b.Run(fmt.Sprintf("%s/policies=%d", shape.name, n), func(b *testing.B) {
				ps := mustLoad(b, shape.policies(n))
				if ps.Len() != n {
					b.Fatalf("Len = %d, want %d", ps.Len(), n)
				}
				req := readReq("/srv/a/b/c/d/e/f/g.log") // depth 8
				req.Resource.Size = int64p(4096)
				if d := ps.Decide(req); !d.Allow || len(d.Errors) != 0 {
					b.Fatalf("Decide = %+v, want allow", d)
				}
				b.ReportAllocs()
				for b.Loop() {
					// Each operation comes a millisecond after the last, as
					// in a session: a context that holds now is rebuilt.
					req.Context.Now = req.Context.Now.Add(time.Millisecond)
					ps.Decide(req)
				}
			})
		}
	}
	// The same 20 policies as scoped, asked about a tree where the only
	// candidates are decided by their scope: no entity, no cedar-go.
	b.Run("scope-only/policies=20", func(b *testing.B) {
		ps := mustLoad(b, logsRead, noEtc, benchScoped(18))
		req := readReq("/var/log/app/x/y/z/w/v/a.log") // depth 8
		if d := ps.Decide(req); !d.Allow {
			b.Fatalf("Decide = %+v, want allow", d)
		}
		b.ReportAllocs()
		for b.Loop() {
			ps.Decide(req)
		}
	})
}
