package workerproto_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

func TestDecisionRoundTrip(t *testing.T) {
	for _, d := range []workerproto.Decision{
		{Action: "read", Resource: "/var/log/app/a.log", Allow: true, Policies: []string{"logs-read"}},
		{Action: "read", Resource: "/etc/shadow", Policies: []string{"no-etc", "bad"}, Reason: "bad: attribute missing"},
		{Action: "exec", Resource: "/usr/bin/df", Allow: true, Policies: []string{"df"}, Argv: `/usr/bin/df -h "/a b"`},
		{Action: "stat", Resource: strings.Repeat("/é", 2000)},
	} {
		got, err := workerproto.ParseDecision(workerproto.AppendDecision(nil, &d))
		if err != nil {
			t.Fatalf("%+v: %v", d, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Errorf("round trip: got %+v, want %+v", got, d)
		}
	}
}

func TestParseDecisionRefusesBadRecords(t *testing.T) {
	good := workerproto.AppendDecision(nil, &workerproto.Decision{Action: "read", Resource: "/a", Policies: []string{"p"}})
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		rec  []byte
		want string
	}{
		{"empty", nil, "cut off"},
		{"version", mod(func(b []byte) []byte { b[0] = 9; return b }), "version"},
		{"allow-byte", mod(func(b []byte) []byte { b[1] = 2; return b }), "allow byte"},
		{"truncated", good[:len(good)-1], "cut off"},
		{"trailing", append(append([]byte(nil), good...), 0), "after a decision record"},
		{"no-action", workerproto.AppendDecision(nil, &workerproto.Decision{Resource: "/a"}), "without an action"},
		{"huge-length", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "cut off"},
		{"bad-utf8", []byte{1, 0, 2, 0xff, 0xfe, 0, 0, 0, 0}, "UTF-8"},
		{"many-policies", []byte{1, 0, 1, 'r', 0, 0, 0, 0xff, 0xff, 0x03}, "policies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := workerproto.ParseDecision(tc.rec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseDecision = %v, want error with %q", err, tc.want)
			}
		})
	}
}

func FuzzParseDecision(f *testing.F) {
	f.Add(workerproto.AppendDecision(nil, &workerproto.Decision{Action: "read", Resource: "/a", Policies: []string{"p", "q"}, Reason: "r"}))
	f.Fuzz(func(t *testing.T, rec []byte) {
		d, err := workerproto.ParseDecision(rec)
		if err != nil {
			return
		}
		// Whatever parses encodes back to the same bytes.
		if again := workerproto.AppendDecision(nil, &d); string(again) != string(rec) {
			t.Fatalf("re-encoded %q as %q", rec, again)
		}
	})
}
