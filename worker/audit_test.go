package worker_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/outcome"
	"github.com/keyhole-dev/keyhole/worker"
)

// TestWorkerWaitsForConfirm checks the worker's side of the audit
// handshake: an operation that changes the host is announced as
// AuditSync and does not act until the server confirms the line; a read
// is announced as Audit and does not wait. When stdin ends instead of a
// Confirm (the server could not write the line), the operation does not
// happen and the script ends INTERNAL.
func TestWorkerWaitsForConfirm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, script, file string // file: what the unconfirmed operation would create
		kinds              []workerproto.Type
	}{
		{"write", `fs.read(d + "/in"); fs.write(d + "/new", "x"); print("after")`, "new",
			[]workerproto.Type{workerproto.TypeAudit, workerproto.TypeAuditSync}},
		{"exec", `proc.run(["/bin/sh", "-c", ": > " + d + "/ran"]); print("after")`, "ran",
			[]workerproto.Type{workerproto.TypeAuditSync}},
		{"caught-write", `catch(fs.write, d + "/new", "x"); print("after")`, "new",
			[]workerproto.Type{workerproto.TypeAuditSync}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := limitsDir(t)
			var in bytes.Buffer
			st := limitsStart(t, dir, "d = "+strconvQuote(dir)+"\n"+tc.script)
			if err := workerproto.NewWriter(&in).WriteJSON(workerproto.TypeStart, st); err != nil {
				t.Fatal(err)
			}
			pr, pw := io.Pipe()
			or, ow := io.Pipe()
			go func() {
				_ = worker.Serve(io.MultiReader(&in, pr), ow)
				ow.Close()
			}()
			r := workerproto.NewReader(or, 0)
			var kinds []workerproto.Type
			var res workerproto.Result
			for {
				typ, p, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch typ {
				case workerproto.TypeAudit:
					kinds = append(kinds, typ)
				case workerproto.TypeAuditSync:
					kinds = append(kinds, typ)
					// The line could not be written: no Confirm, the
					// worker's stdin ends. Nothing may have acted yet.
					if _, err := os.Stat(filepath.Join(dir, tc.file)); !os.IsNotExist(err) {
						t.Errorf("%s exists before the line was confirmed: %v", tc.file, err)
					}
					pw.Close()
				case workerproto.TypePrint:
					t.Errorf("script went on: printed %q", p)
				case workerproto.TypeResult:
					if err := workerproto.Decode(typ, p, &res); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The end of stdin also cancels the script ("session ended"):
			// either way it is INTERNAL and the server decides the message.
			if res.Exit != outcome.ExitInternal || res.Error == nil ||
				!strings.Contains(res.Error.Message, "not performed") && res.Error.Message != "session ended" {
				t.Errorf("result = %d %+v, want INTERNAL", res.Exit, res.Error)
			}
			if _, err := os.Stat(filepath.Join(dir, tc.file)); !os.IsNotExist(err) {
				t.Errorf("%s exists: %v", tc.file, err)
			}
			if len(kinds) != len(tc.kinds) {
				t.Fatalf("audit messages %v, want %v", kinds, tc.kinds)
			}
			for i := range kinds {
				if kinds[i] != tc.kinds[i] {
					t.Errorf("audit messages %v, want %v", kinds, tc.kinds)
				}
			}
		})
	}
}

func strconvQuote(s string) string { return `"` + s + `"` }
