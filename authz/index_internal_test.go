package authz

import (
	"fmt"
	"math/bits"
	"strings"
	"testing"
)

// TestIndexNarrows checks that a request is shown only the policies filed
// under its user, its role, its resource and its directory chain, and the
// unscoped rest: that the index, not a walk of the bucket, is what keeps
// Decide near flat. (reference_test.go checks that it never misses a
// policy.)
func TestIndexNarrows(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for role := range 50 {
		for dir := range 20 {
			fmt.Fprintf(&b, `@id("r%d-d%d") permit (principal in Keyhole::Role::"r%d", action == Keyhole::Action::"read", resource in Keyhole::Dir::"/srv/d%d/x");`+"\n",
				role, dir, role, dir)
		}
		fmt.Fprintf(&b, `@id("u%d") permit (principal == Keyhole::User::"u%d", action, resource == Keyhole::File::"/srv/f%d");`+"\n", role, role, role)
	}
	for dir := range 20 {
		fmt.Fprintf(&b, `@id("no-d%d") forbid (principal, action, resource in Keyhole::Dir::"/srv/d%d");`+"\n", dir, dir)
	}
	b.WriteString(`@id("root") forbid (principal, action, resource in Keyhole::Dir::"/") when { context.transport == "sftp" };` + "\n")
	b.WriteString(`@id("rest") forbid (principal, action, resource is Keyhole::File) when { resource.name like "*.key" };` + "\n")
	ps, err := LoadFiles(map[string][]byte{"a.cedar": []byte(b.String())})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  Request
		want []string // ids the index returns, in load order
	}{
		{"role-and-dir", Request{Principal: Principal{UserID: "u7", Role: "r3"}, Action: "read",
			Resource: Resource{Kind: KindFile, Path: "/srv/d5/x/y/z/a.log"}},
			[]string{"r3-d5", "no-d5", "root", "rest"}},
		{"user-and-file", Request{Principal: Principal{UserID: "u7", Role: "r3"}, Action: "read",
			Resource: Resource{Kind: KindFile, Path: "/srv/f7"}},
			[]string{"u7", "root", "rest"}},
		{"dir-resource-is-its-own-chain", Request{Principal: Principal{UserID: "u7", Role: "r9"}, Action: "read",
			Resource: Resource{Kind: KindDir, Path: "/srv/d2/x"}},
			[]string{"r9-d2", "no-d2", "root", "rest"}},
		{"root", Request{Principal: Principal{UserID: "u7", Role: "r9"}, Action: "list",
			Resource: Resource{Kind: KindDir, Path: "/"}},
			[]string{"root", "rest"}},
		{"sibling-prefix-is-not-a-parent", Request{Principal: Principal{UserID: "u7", Role: "r1"}, Action: "read",
			Resource: Resource{Kind: KindFile, Path: "/srv/d1x/a"}},
			[]string{"root", "rest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bk := ps.byAction[tt.req.Action]
			ids := newRequestIDs(&tt.req)
			pos := newPositions(len(bk.policies), nil)
			bk.index.lookup(pos, &ids)
			var got []string
			for w, word := range pos {
				for word != 0 {
					got = append(got, string(bk.policies[w*64+bits.TrailingZeros64(word)].id))
					word &= word - 1
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("index returned %v of %d policies, want %v", got, len(bk.policies), tt.want)
			}
		})
	}
}
