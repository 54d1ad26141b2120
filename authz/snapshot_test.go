package authz_test

import (
	"testing"

	"github.com/keyhole-dev/keyhole/authz"
)

func TestFilesRebuildsTheSameSet(t *testing.T) {
	t.Parallel()
	src := map[string][]byte{
		"a.cedar": []byte(`@id("a") permit (principal, action == Keyhole::Action::"read", resource in Keyhole::Dir::"/var/log");`),
		"b.cedar": []byte(`@id("b") forbid (principal, action, resource in Keyhole::Dir::"/etc");`),
	}
	ps, err := authz.LoadFiles(src)
	if err != nil {
		t.Fatal(err)
	}
	// The set keeps its own copy: changing the caller's map or bytes, or
	// the map Files returned, changes nothing.
	src["a.cedar"][0] = 'X'
	delete(src, "b.cedar")
	files := ps.Files()
	files["c.cedar"] = []byte("junk")
	files["a.cedar"][0] = 'Y'

	again, err := authz.LoadFiles(ps.Files())
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if again.Version() != ps.Version() {
		t.Fatalf("rebuilt version %s, want %s", again.Version(), ps.Version())
	}
	if len(again.IDs()) != 2 {
		t.Fatalf("rebuilt ids %v", again.IDs())
	}
}

func TestFilesOfNilSet(t *testing.T) {
	t.Parallel()
	var ps *authz.PolicySet
	if f := ps.Files(); f == nil || len(f) != 0 {
		t.Fatalf("Files of nil set = %v", f)
	}
	again, err := authz.LoadFiles(ps.Files())
	if err != nil || again.Version() != ps.Version() {
		t.Fatalf("rebuild of empty set: %v, %s vs %s", err, again.Version(), ps.Version())
	}
}
