package inventory

import (
	"strings"
	"testing"
)

// TestLimits: the bounds on hosts, groups and range expansion end in an
// error naming the line, not in minutes of work or memory. The bounds are
// lowered here so that the test is fast; the code paths are the same.
func TestLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		limits limits
		src    string
		want   string
	}{
		{"hosts", limits{hosts: 10, groups: 10, expanded: 100}, "[g]\na[0:8]\nb\nc\n", "inventory: bad.ini:4: more than 10 hosts"},
		{"hosts-range-repeated-is-no-new-host", limits{hosts: 10, groups: 10, expanded: 100}, "[g]\na[0:9]\n[h]\na[0:9]\n", ""},
		{"groups", limits{hosts: 10, groups: 5, expanded: 100}, "[a]\n[b]\n[c]\n[d]\n", "inventory: bad.ini:4: more than 5 groups"},
		{"expansion-repeated", limits{hosts: 100, groups: 10, expanded: 25}, strings.Repeat("[g]\nw[0:9]\n", 3), "inventory: bad.ini:6: ranges make more than 25 host names in all (a host written again counts again)"},
	}
	for _, tc := range tests {
		b := newBuilder("bad.ini")
		b.limits = tc.limits
		_, err := b.build([]byte(tc.src), FormatINI, "")
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: error %q, want %q", tc.name, got, tc.want)
		}
	}
}
