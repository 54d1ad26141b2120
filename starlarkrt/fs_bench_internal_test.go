package starlarkrt

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
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

// workerAudit returns the audit sink a worker process uses (each decision
// put as a record in a shared ring), with the ring emptied as the server
// empties it: every 20 ms, and when a Sync message comes (a full ring).
// The consumer takes the records without parsing them, as workerAuditFrames
// reads the frames without decoding them.
func workerAudit(b *testing.B) audit.Sink {
	f, err := workerproto.NewRingFile(0)
	if err != nil {
		b.Fatal(err)
	}
	producer, err := workerproto.MapRing(f)
	if err != nil {
		b.Fatal(err)
	}
	consumer, err := workerproto.MapRing(f)
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	ap := &auditPipe{w: workerproto.NewWriter(w), ring: producer, ctx: context.Background(), confirmed: make(chan struct{}, 1)}
	var mu sync.Mutex
	take := func() {
		mu.Lock()
		defer mu.Unlock()
		if err := consumer.Take(func([]byte) error { return nil }); err != nil {
			panic(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				take()
			}
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		fr := workerproto.NewReader(r, 0)
		for {
			typ, _, err := fr.Next()
			if err != nil {
				return
			}
			take()
			if typ == workerproto.TypeSync {
				ap.confirmed <- struct{}{}
			}
		}
	}()
	b.Cleanup(func() {
		close(stop)
		w.Close()
		<-done
		<-done
		r.Close()
		producer.Unmap()
		consumer.Unmap()
	})
	return ap
}

// workerAuditFrames returns the audit sink of a worker without a ring
// (each event encoded and written as one frame to a pipe), with the pipe
// drained by a goroutine as the server drains a worker's stdout.
func workerAuditFrames(b *testing.B) audit.Sink {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, r)
	}()
	b.Cleanup(func() {
		w.Close()
		<-done
		r.Close()
	})
	// Reads and stats need no Confirm: the sink never waits here.
	return &auditPipe{w: workerproto.NewWriter(w), ctx: context.Background(), confirmed: make(chan struct{}, 1)}
}

// BenchmarkFSStat is fs.stat in a script, with 100 policies loaded.
func BenchmarkFSStat(b *testing.B) { benchScript(b, "fs.stat(path)") }

// BenchmarkFSRead is fs.read of a small file in a script, with 100
// policies loaded.
func BenchmarkFSRead(b *testing.B) { benchScript(b, "fs.read(path)") }

// BenchmarkFSStatWorkerAudit is BenchmarkFSStat with the worker's audit
// sink: every decision is put in the decision ring.
func BenchmarkFSStatWorkerAudit(b *testing.B) {
	benchScriptSink(b, "fs.stat(path)", workerAudit(b))
}

// BenchmarkFSReadWorkerAudit is BenchmarkFSRead with the worker's audit
// sink.
func BenchmarkFSReadWorkerAudit(b *testing.B) {
	benchScriptSink(b, "fs.read(path)", workerAudit(b))
}

// BenchmarkFSStatWorkerAuditFrames is BenchmarkFSStat with the audit
// sink of a worker without a ring: every decision event is JSON-encoded
// and written as a frame to a pipe.
func BenchmarkFSStatWorkerAuditFrames(b *testing.B) {
	benchScriptSink(b, "fs.stat(path)", workerAuditFrames(b))
}

// BenchmarkFSReadWorkerAuditFrames is BenchmarkFSRead with the audit
// sink of a worker without a ring.
func BenchmarkFSReadWorkerAuditFrames(b *testing.B) {
	benchScriptSink(b, "fs.read(path)", workerAuditFrames(b))
}

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

// BenchmarkAuditEncode is what the worker's audit sink does per event
// before its one write: encoding a decision event as JSON.
func BenchmarkAuditEncode(b *testing.B) {
	e := audit.Event{Event: audit.Decision, Session: "s-1", User: "agent-7", Role: "ops", Transport: "script",
		Action: "stat", Resource: "/var/log/app/a.log", Decision: "allow", Policies: []string{"sandbox-read"},
		PolicyVersion: "sha256:0123456789abcdef"}
	b.ReportAllocs()
	for b.Loop() {
		if err := workerproto.NewWriter(io.Discard).WriteJSON(workerproto.TypeAudit, e); err != nil {
			b.Fatal(err)
		}
	}
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
