package sshserver

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/outcome"
)

// TestLimitOf names the limit of each LIMIT_EXCEEDED message keyhole
// writes; anything else is "other", so a message cannot make a label.
func TestLimitOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ msg, want string }{
		{"step limit of 1000 exceeded", "steps"},
		{"wall-clock limit of 1s exceeded", "wall"},
		{"wall-clock limit of 1s exceeded (worker stopped by the server)", "wall"},
		{"memory limit of 16777216 bytes exceeded", "memory"},
		{"interpreter stack limit of 67108864 bytes exceeded (nesting too deep)", "stack"},
		{"output limit of 65536 bytes exceeded", "output"},
		{"fs.read: the script's read limit of 4096 bytes is exceeded", "read"},
		{"fs.read: file is larger than the read limit of 4096 bytes", "read"},
		{"fs.write: the script's write limit of 1024 bytes would be exceeded", "write"},
		{"fs.write: data is larger than the write limit of 1024 bytes", "write"},
		{"fs.exists: the script's operation limit of 20 is exceeded", "operations"},
		{"script larger than 1048576 bytes", "script_size"},
		{"request line longer than 2162688 bytes", "script_size"},
		{"script not received within 30s", "script_wait"},
		{"proc.run: timed out after 5s; killed with its process group", "exec_timeout"},
		{"json.decode: text is longer than 1048576 bytes", "other"},
		{"glob: more than 10000 matches", "other"},
		{"no space left on device", "other"},
		{"", "other"},
	} {
		if got := limitOf(&outcome.Error{Kind: outcome.KindLimitExceeded, Message: tc.msg}); got != tc.want {
			t.Errorf("limitOf(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

// TestAuthRefusalLabel keeps reasons without their detail or cap, and
// turns anything unknown into "other": a client cannot choose a label.
func TestAuthRefusalLabel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ reason, want string }{
		{"unknown CA", "unknown CA"},
		{"revoked: serial 8", "revoked"},
		{"principal not allowed: login \"root\" not in [logs]", "principal not allowed"},
		{keys.ErrKeyNotListed.Reason, "key not listed"},
		{"too many unauthenticated connections from this source (limit 10)", "too many unauthenticated connections from this source"},
		{"too many connections for this user (limit 32)", "too many connections for this user"},
		{"login grace time exceeded", "login grace time exceeded"},
		{reasonAuditUnwritable, "audit log unwritable"},
		{"ssh: something the authenticator said about user mallory", "other"},
		{"unknown CA\x00", "other"},
		{"", "other"},
	} {
		if got := authRefusalLabel(tc.reason); got != tc.want {
			t.Errorf("authRefusalLabel(%q) = %q, want %q", tc.reason, got, tc.want)
		}
	}
	for _, tc := range []struct{ reason, want string }{
		{"too many sessions (limit 4)", "too many sessions"},
		{"too many sessions for this user (limit 2)", "too many sessions for this user"},
		{"no policy loaded", "no policy loaded"},
		{reasonAuditUnwritable, "audit log unwritable"},
		{"something else", "other"},
	} {
		if got := boundedReason(tc.reason, sessionRefusalReasons); got != tc.want {
			t.Errorf("session refusal %q = %q, want %q", tc.reason, got, tc.want)
		}
	}
}

// TestMetricsDocLabelValues checks that docs/metrics.md lists exactly the
// refusal reasons and limits this package counts by.
func TestMetricsDocLabelValues(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := func(label, metric string) []string {
		for _, line := range strings.Split(string(b), "\n") {
			cells := strings.Split(strings.Trim(line, "|"), "|")
			if len(cells) == 3 && strings.TrimSpace(cells[0]) == "`"+label+"`" && strings.Contains(cells[1], "`"+metric+"`") {
				return ticked(cells[2])
			}
		}
		t.Fatalf("docs/metrics.md has no values of %s for %s", label, metric)
		return nil
	}
	keysOf := func(m map[string]bool) []string {
		out := []string{"other"}
		for k := range m {
			out = append(out, k)
		}
		return out
	}
	var limits []string
	for _, n := range limitNames {
		limits = append(limits, n.limit)
	}
	limits = append(limits, "other")
	for _, tc := range []struct {
		label, metric string
		code          []string
	}{
		{"reason", "keyhole_auth_refusals_total", keysOf(authRefusalReasons)},
		{"reason", "keyhole_sessions_refused_total", keysOf(sessionRefusalReasons)},
		{"limit", "keyhole_limit_hits_total", limits},
	} {
		doc := documented(tc.label, tc.metric)
		slices.Sort(doc)
		code := slices.Compact(slices.Sorted(slices.Values(tc.code)))
		if !slices.Equal(doc, code) {
			t.Errorf("%s of %s: docs/metrics.md lists %q, the code counts by %q", tc.label, tc.metric, doc, code)
		}
	}
}

// ticked returns the backticked words of a table cell that are outside
// parentheses (those inside explain, they are not values).
func ticked(s string) []string {
	var out []string
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case '`':
			j := strings.IndexByte(s[i+1:], '`')
			if j < 0 {
				return out
			}
			if depth == 0 {
				out = append(out, s[i+1:i+1+j])
			}
			i += j + 1
		}
	}
	return out
}
