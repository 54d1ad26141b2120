package starlarkrt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/hostops"
)

// TestCatOutput: fs.cat's bytes go to the output in order with prints,
// within the output limit, which ends the script when the file passes
// it; the read budget charges the bytes sent.
func TestCatOutput(t *testing.T) {
	root, files := fsSandbox(t)
	p := filepath.Join(root, "allowed/log.txt") // 40 bytes
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		maxOutput int64
		wantOut   string
		wantKind  string
	}{
		{name: "fits", maxOutput: 100, wantOut: "a\n" + string(data) + "40\n"},
		{name: "past-output", maxOutput: 20, wantOut: "a\n" + string(data[:18]), wantKind: hostops.KindLimitExceeded},
		{name: "exactly-output", maxOutput: 42, wantOut: "a\n" + string(data), wantKind: hostops.KindLimitExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := realHost(t, files, &audit.Memory{})
			c := &hostops.Counters{}
			h.Counters = c
			var out bytes.Buffer
			src := "print(\"a\")\nv, err = catch(fs.cat, " + quote(p) + ")\nprint(v)"
			res := Run(context.Background(), "cat.star", src, Options{Host: h, Stdout: &out, MaxOutput: tc.maxOutput, Counters: c})
			if out.String() != tc.wantOut {
				t.Errorf("output %q, want %q", out.String(), tc.wantOut)
			}
			if tc.wantKind == "" && res.Exit != 0 || tc.wantKind != "" && (res.Err == nil || res.Err.Kind != tc.wantKind) {
				t.Errorf("end %d %v, want %q", res.Exit, res.Err, tc.wantKind)
			}
			if want := int64(len(tc.wantOut)) - int64(len("a\n")); tc.wantKind != "" && c.Read() != want {
				t.Errorf("read %d, want %d", c.Read(), want)
			}
		})
	}
}
