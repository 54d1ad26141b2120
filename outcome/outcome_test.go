package outcome_test

import (
	"encoding/json"
	"testing"

	"github.com/keyhole-dev/keyhole/outcome"
)

func TestExitFor(t *testing.T) {
	for _, tc := range []struct {
		kind string
		exit int
	}{
		{outcome.KindAccessDenied, 13},
		{outcome.KindLimitExceeded, 124},
		{outcome.KindSyntaxError, 2},
		{outcome.KindInternal, 125},
		{outcome.KindScriptError, 1},
		{outcome.KindNotFound, 1},
		{outcome.KindInvalidArgument, 1},
		{outcome.KindIOError, 1},
		{"SOMETHING_NEW", 1},
	} {
		if got := outcome.ExitFor(tc.kind); got != tc.exit {
			t.Errorf("ExitFor(%s) = %d, want %d", tc.kind, got, tc.exit)
		}
		// Every kind's own exit status is a valid end with that kind.
		if !outcome.ValidEnd(outcome.ExitFor(tc.kind), &outcome.Error{Kind: tc.kind}) {
			t.Errorf("ValidEnd(ExitFor(%s)) = false", tc.kind)
		}
	}
}

func TestValidEnd(t *testing.T) {
	denied := &outcome.Error{Kind: outcome.KindAccessDenied, Message: "m"}
	for _, tc := range []struct {
		name string
		exit int
		err  *outcome.Error
		want bool
	}{
		{"ok", 0, nil, true},
		{"ok-with-error", 0, denied, false},
		{"denied", 13, denied, true},
		{"error-without-error", 1, nil, false},
		{"error-without-kind", 1, &outcome.Error{Message: "m"}, false},
		{"unknown-status", 3, denied, false},
		{"negative-status", -1, denied, false},
	} {
		if got := outcome.ValidEnd(tc.exit, tc.err); got != tc.want {
			t.Errorf("%s: ValidEnd = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestErrorJSON(t *testing.T) {
	e := &outcome.Error{Kind: outcome.KindAccessDenied, Message: "read /etc/shadow denied", Action: "read",
		Resource: "/etc/shadow", Policies: []string{"no-etc"}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"kind":"ACCESS_DENIED","message":"read /etc/shadow denied","action":"read","resource":"/etc/shadow","policies":["no-etc"]}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	if got := e.Error(); got != "ACCESS_DENIED: read /etc/shadow denied" {
		t.Errorf("Error() = %q", got)
	}
}
