package audit_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
)

func intp(i int) *int { return &i }

// TestAppendJSONIsMarshal checks that AppendJSON writes exactly the bytes
// json.Marshal writes, field by field and for every kind of character.
func TestAppendJSONIsMarshal(t *testing.T) {
	t.Parallel()
	full := audit.Event{
		Time: time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC), Event: audit.Decision,
		Session: "s-1", User: "agent-7", Role: "ops", Source: "127.0.0.1:5555",
		Fingerprint: "SHA256:abc", Transport: "script", Request: "exec", Action: "read",
		Resource: "/var/log/app/a.log", Argv: `/bin/echo "a b"`, Decision: "allow", Policies: []string{"p1", "p2"},
		PolicyVersion: "sha256:0123", ScriptSHA256: "feed", Reason: "why", Exit: intp(3),
		DryRun: true,
	}
	tests := []struct {
		name string
		e    audit.Event
	}{
		{name: "zero", e: audit.Event{}},
		{name: "full", e: full},
		{name: "empty-policies-slice", e: audit.Event{Event: audit.Decision, Decision: "deny", Policies: []string{}}},
		{name: "dry-run", e: audit.Event{Event: audit.Decision, Decision: "allow", DryRun: true}},
		{name: "exit-zero", e: audit.Event{Event: audit.SessionEnd, Exit: intp(0)}},
		{name: "exit-negative", e: audit.Event{Event: audit.SessionEnd, Exit: intp(-129)}},
		{name: "zone-offset", e: audit.Event{Time: time.Date(1999, 12, 31, 23, 59, 59, 1, time.FixedZone("x", -(9*3600+30*60)))}},
		{name: "local-time", e: audit.Event{Time: time.Unix(1700000000, 5)}},
		{name: "quotes-and-backslashes", e: audit.Event{Resource: `/a"b\c`, Reason: `"\"`}},
		{name: "control-characters", e: audit.Event{Resource: "/a\x00b\x01\x1f\b\f\n\r\t\x7f"}},
		{name: "html", e: audit.Event{Resource: "/<script>&amp;</script>", Policies: []string{"<p>", "a&b"}}},
		{name: "invalid-utf8", e: audit.Event{Resource: "/a\xffb\xc3\x28\xe2\x82", Reason: "\xed\xa0\x80"}},
		{name: "line-separators", e: audit.Event{Resource: "/a\u2028b\u2029c\u202a"}},
		{name: "multibyte", e: audit.Event{Resource: "/журнал/日志/🙂.log"}},
		{name: "year-zero", e: audit.Event{Time: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.e.AppendJSON([]byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Fatalf("AppendJSON =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestAppendJSONBadTime checks that a time JSON cannot hold is the error
// json.Marshal gives, not output.
func TestAppendJSONBadTime(t *testing.T) {
	t.Parallel()
	for _, tm := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 24*3600)),
	} {
		e := audit.Event{Time: tm, Event: audit.Decision}
		_, want := json.Marshal(&e)
		got, err := e.AppendJSON(nil)
		if want == nil || err == nil || err.Error() != want.Error() || got != nil {
			t.Errorf("AppendJSON(%v) = %q, %v; want error %v", tm, got, err, want)
		}
	}
}

// FuzzAppendJSON compares AppendJSON with json.Marshal on arbitrary
// strings: go test -run '^$' -fuzz=FuzzAppendJSON -fuzztime=60s ./audit
func FuzzAppendJSON(f *testing.F) {
	f.Add("/var/log/a.log", "allow", "p1", int64(0), 0)
	f.Add("/a\xff<b>&\u2028\x00\"\\", "", "", int64(-1), -3)
	f.Add("日志\xe2\x82", "\t", "\u2029", int64(1<<40), 1<<30)
	f.Fuzz(func(t *testing.T, resource, reason, policy string, nanos int64, exit int) {
		e := audit.Event{
			Time: time.Unix(0, nanos).UTC(), Event: audit.Decision, Resource: resource,
			Reason: reason, Policies: []string{policy, resource}, Exit: &exit,
		}
		want, werr := json.Marshal(&e)
		got, err := e.AppendJSON(nil)
		if (werr == nil) != (err == nil) || !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON = %q, %v; json.Marshal = %q, %v", got, err, want, werr)
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := audit.Event{
		Time: time.Now(), Event: audit.Decision, Session: "s-1", User: "agent-7", Role: "ops",
		Transport: "script", Action: "stat", Resource: "/var/log/app/a.log", Decision: "allow",
		Policies: []string{"sandbox-read"}, PolicyVersion: "sha256:0123456789abcdef",
	}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.AppendJSON(make([]byte, 0, 512)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
