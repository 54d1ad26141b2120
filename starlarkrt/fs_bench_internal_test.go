package starlarkrt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/keyhole-dev/keyhole/audit"
)

// benchPolicies returns the sandbox's policies plus filler up to n, as a
// team would write them: scoped to roles and trees, some with conditions.
func benchPolicies(files map[string][]byte, n int) map[string][]byte {
	var b strings.Builder
	for i := range n - 3 {
		switch i % 4 {
		case 0, 1:
			fmt.Fprintf(&b, `@id("p%d") permit (principal in Keyhole::Role::"team%d", action in [Keyhole::Action::"read", Keyhole::Action::"stat"], resource in Keyhole::Dir::"/srv/team%d");`+"\n", i, i, i)
		case 2:
			fmt.Fprintf(&b, `@id("p%d") forbid (principal, action, resource in Keyhole::Dir::"/srv/secret%d");`+"\n", i, i)
		case 3:
			fmt.Fprintf(&b, `@id("p%d") forbid (principal, action == Keyhole::Action::"read", resource is Keyhole::File) when { resource.name like "*.key%d" };`+"\n", i, i)
		}
	}
	out := map[string][]byte{"filler.cedar": []byte(b.String())}
	for k, v := range files {
		out[k] = v
	}
	return out
}

// benchScript runs `for i in range(n): <call>` once with n = b.N and
// reports the cost per call.
func benchScript(b *testing.B, call string) {
	benchScriptSink(b, call, audit.Discard)
}

// benchScriptSink is benchScript with the host's audit events sent to
// sink.
func benchScriptSink(b *testing.B, call string, sink audit.Sink) {
	root, files := fsSandbox(b)
	h := realHost(b, benchPolicies(files, 100), sink)
	path := filepath.Join(root, "allowed/a.txt")
	benchScriptHost(b, call, h, path)
}

// benchScriptHost runs `for i in range(n): <call>` with host h.
func benchScriptHost(b *testing.B, call string, h Host, path string) {
	src := "for i in range(n):\n    " + call + "\n"
	b.ReportAllocs()
	b.ResetTimer()
	res := run1(context.Background(), "bench.star", src, Options{Host: h, MaxSteps: 1 << 62},
		starlark.StringDict{"n": starlark.MakeInt(b.N), "path": starlark.String(path)})
	if res.Exit != 0 {
		b.Fatalf("exit %d: %v", res.Exit, res.Err)
	}
}

// BenchmarkFSStat is fs.stat in a script, with 100 policies loaded.
func BenchmarkFSStat(b *testing.B) { benchScript(b, "fs.stat(path)") }

// BenchmarkFSRead is fs.read of a small file in a script, with 100
// policies loaded.
func BenchmarkFSRead(b *testing.B) { benchScript(b, "fs.read(path)") }

// BenchmarkFSStatFakeHost is fs.stat in a script against an in-memory host
// that neither touches the file system nor asks a policy: the cost of the
// interpreter, the call and the result struct alone.
func BenchmarkFSStatFakeHost(b *testing.B) {
	benchScriptHost(b, "fs.stat(path)", &fakeHost{files: map[string]string{"/allowed/a.txt": "alpha\n"}}, "/allowed/a.txt")
}

// BenchmarkFSReadFakeHost is fs.read against the in-memory host.
func BenchmarkFSReadFakeHost(b *testing.B) {
	benchScriptHost(b, "fs.read(path)", &fakeHost{files: map[string]string{"/allowed/a.txt": "alpha\n"}}, "/allowed/a.txt")
}

// BenchmarkGoStat is the floor of BenchmarkFSStat: os.Stat in plain Go.
func BenchmarkGoStat(b *testing.B) {
	root, _ := fsSandbox(b)
	path := filepath.Join(root, "allowed/a.txt")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := os.Stat(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGoReadFile is the floor of BenchmarkFSRead: os.ReadFile.
func BenchmarkGoReadFile(b *testing.B) {
	root, _ := fsSandbox(b)
	path := filepath.Join(root, "allowed/a.txt")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
}
