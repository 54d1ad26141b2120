package sshserver

import "testing"

func TestOpenSessionsCaps(t *testing.T) {
	cases := []struct {
		name         string
		max, perUser int
		users        []string // acquired in order
		refused      int      // index of the first refusal, -1 for none
		reason       string
	}{
		{name: "no-caps", users: []string{"a", "a", "a", "b"}, refused: -1},
		{name: "total", max: 2, users: []string{"a", "b", "c"}, refused: 2, reason: "too many sessions (limit 2)"},
		{name: "per-user", perUser: 1, users: []string{"a", "b", "a"}, refused: 2, reason: "too many sessions for this user (limit 1)"},
		{name: "per-user-first", max: 1, perUser: 1, users: []string{"a", "a"}, refused: 1, reason: "too many sessions for this user (limit 1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newOpenSessions(tc.max, tc.perUser)
			var releases []func()
			for i, u := range tc.users {
				rel, reason := o.acquire(u)
				if (rel == nil) != (i == tc.refused) {
					t.Fatalf("acquire %d (%s): refused=%v (%q)", i, u, rel == nil, reason)
				}
				if rel == nil {
					if reason != tc.reason {
						t.Errorf("reason %q, want %q", reason, tc.reason)
					}
					break
				}
				releases = append(releases, rel)
			}
			for _, rel := range releases {
				rel()
				rel() // a second call changes nothing
			}
			for _, u := range tc.users {
				if total, n := o.counts(u); total != 0 || n != 0 {
					t.Fatalf("after release: total %d, %s %d", total, u, n)
				}
			}
			if rel, _ := o.acquire(tc.users[0]); rel == nil {
				t.Error("a released slot cannot be taken again")
			}
		})
	}
}
