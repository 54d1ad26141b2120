package sshserver

import "testing"

func TestLegacySCP(t *testing.T) {
	for _, tt := range []struct {
		cmd  string
		want bool
	}{
		{"scp -t /srv/deploy/app.conf", true},
		{"scp -f /srv/deploy/app.conf", true},
		{"scp -v -r -d -t -- /srv/deploy", true},
		{"/usr/bin/scp -pt /x", true},
		{"scp", false},
		{"scp = 1\nprint(scp)", false},
		{"scp -- -t", false},
		{"scp /x", false},
		{"print('scp -t')", false},
		{"scpx -t /x", false},
	} {
		if got := legacySCP(tt.cmd); got != tt.want {
			t.Errorf("legacySCP(%q) = %v, want %v", tt.cmd, got, tt.want)
		}
	}
}
