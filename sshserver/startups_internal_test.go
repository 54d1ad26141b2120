package sshserver

import (
	"net/netip"
	"testing"
)

func TestStartupsCaps(t *testing.T) {
	s := newStartups(5, 2)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	var releases []func()
	take := func(src netip.Addr, wantOK bool, wantReason string) {
		t.Helper()
		rel, reason := s.acquire(src)
		if (rel != nil) != wantOK || reason != wantReason {
			t.Fatalf("acquire(%s) = %v, %q; want ok=%v %q", src, rel != nil, reason, wantOK, wantReason)
		}
		if rel != nil {
			releases = append(releases, rel)
		}
	}
	take(a, true, "")
	take(a, true, "")
	take(a, false, "too many unauthenticated connections from this source (limit 2)")
	take(b, true, "")
	take(b, true, "")
	take(netip.MustParseAddr("192.0.2.3"), true, "")
	take(netip.MustParseAddr("192.0.2.4"), false, "too many unauthenticated connections (limit 5)")
	// Releasing twice frees one slot only.
	releases[0]()
	releases[0]()
	if total, fromA := s.counts(a); total != 4 || fromA != 1 {
		t.Fatalf("after release: total %d, from a %d; want 4, 1", total, fromA)
	}
	take(a, true, "")
	for _, r := range releases {
		r()
	}
	if total, _ := s.counts(a); total != 0 || len(s.byKey) != 0 {
		t.Fatalf("after all releases: total %d, sources %d", total, len(s.byKey))
	}
	// Defaults, and a per-source default never above the total.
	if d := newStartups(0, 0); d.max != DefaultMaxStartups || d.perKey != DefaultMaxStartupsPerSource {
		t.Errorf("defaults = %d/%d", d.max, d.perKey)
	}
	if d := newStartups(3, 0); d.perKey != 3 {
		t.Errorf("per-source default with max 3 = %d", d.perKey)
	}
}
