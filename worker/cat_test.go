package worker_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/authz"
)

// TestServeCatWithoutDescriptorSocket: a worker with no descriptor socket
// (Serve) sends fs.cat's bytes as Print messages, in order with the
// script's prints, and counts them as read.
func TestServeCatWithoutDescriptorSocket(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := strings.Repeat("0123456789abcdef", 40000) // 640000 bytes, three chunks
	p := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	st := start(t, `print("before")
print(fs.cat(`+`"`+p+`"`+`))`)
	ps, err := authz.LoadFiles(map[string][]byte{"p.cedar": []byte(`@id("r") permit (principal, action == Keyhole::Action::"read", resource in Keyhole::Dir::"` + dir + `");`)})
	if err != nil {
		t.Fatal(err)
	}
	st.Policies, st.PolicyVersion = ps.Files(), ps.Version()
	st.Limits.MaxOutput = 1 << 20
	prints, events, res := serve(t, st)
	if res.Exit != 0 || res.BytesRead != int64(len(data)) {
		t.Fatalf("result %+v", res)
	}
	if got := strings.Join(prints, ""); got != "before\n"+data+"640000\n" {
		t.Errorf("output of %d bytes in %d prints", len(got), len(prints))
	}
	if len(events) != 1 || events[0].Action != "read" || events[0].Resource != p || events[0].Decision != "allow" {
		t.Errorf("events %+v", events)
	}
}
