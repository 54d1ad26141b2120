package worker

// The cost of the worker's audit sink (auditPipe) under a script's host
// operations, beside starlarkrt's BenchmarkFSStat and BenchmarkFSRead,
// which discard the events.

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

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/starlarkrt"
)

// benchSink runs `for i in range(b.N): <call>` on a small file, under
// 100 policies, with the host's audit events sent to sink.
func benchSink(b *testing.B, call string, sink audit.Sink) {
	root, err := filepath.EvalSymlinks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(root, "a.txt")
	if err := os.WriteFile(path, []byte("alpha\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	var pol strings.Builder
	fmt.Fprintf(&pol, `@id("bench-read") permit (principal in Keyhole::Role::"ops", action in [Keyhole::Action::"read", Keyhole::Action::"stat"], resource in Keyhole::Dir::%q);`+"\n", root)
	for i := range 99 {
		if i%2 == 0 {
			fmt.Fprintf(&pol, `@id("p%d") permit (principal in Keyhole::Role::"team%d", action in [Keyhole::Action::"read", Keyhole::Action::"stat"], resource in Keyhole::Dir::"/srv/team%d");`+"\n", i, i, i)
		} else {
			fmt.Fprintf(&pol, `@id("p%d") forbid (principal, action, resource in Keyhole::Dir::"/srv/secret%d");`+"\n", i, i)
		}
	}
	ps, err := authz.LoadFiles(map[string][]byte{"bench.cedar": []byte(pol.String())})
	if err != nil {
		b.Fatal(err)
	}
	h := &hostops.Host{
		Policy:    ps,
		Principal: authz.Principal{UserID: "agent-7", Role: "ops", Principals: []string{"ops"}, Auth: "certificate"},
		Context:   authz.Context{SessionID: "s-1", Transport: "script"},
		Audit:     sink,
	}
	src := fmt.Sprintf("for i in range(%d):\n    %s\n", b.N, strings.ReplaceAll(call, "path", fmt.Sprintf("%q", path)))
	b.ReportAllocs()
	b.ResetTimer()
	res := starlarkrt.Run(context.Background(), "bench.star", src, starlarkrt.Options{Host: h, MaxSteps: 1 << 62, Stdout: io.Discard})
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

// BenchmarkFSStatWorkerAudit is fs.stat in a script, with 100 policies loaded, with the worker's audit
// sink: every decision is put in the decision ring.
func BenchmarkFSStatWorkerAudit(b *testing.B) {
	benchSink(b, "fs.stat(path)", workerAudit(b))
}

// BenchmarkFSReadWorkerAudit is fs.read of a small file in a script with the worker's audit
// sink.
func BenchmarkFSReadWorkerAudit(b *testing.B) {
	benchSink(b, "fs.read(path)", workerAudit(b))
}

// BenchmarkFSStatWorkerAuditFrames is fs.stat in a script with the audit
// sink of a worker without a ring: every decision event is JSON-encoded
// and written as a frame to a pipe.
func BenchmarkFSStatWorkerAuditFrames(b *testing.B) {
	benchSink(b, "fs.stat(path)", workerAuditFrames(b))
}

// BenchmarkFSReadWorkerAuditFrames is fs.read of a small file in a script with the audit
// sink of a worker without a ring.
func BenchmarkFSReadWorkerAuditFrames(b *testing.B) {
	benchSink(b, "fs.read(path)", workerAuditFrames(b))
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
