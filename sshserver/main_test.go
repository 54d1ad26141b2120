package sshserver_test

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

// fakeWorkerEnv names a misbehaving worker this test binary can act as, to
// test the server against a worker that a script has subverted.
const fakeWorkerEnv = "SSHSERVER_TEST_FAKE_WORKER"

// TestMain lets the test binary serve as the server's worker process, real
// (testenv.Main) or fake.
func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeWorkerEnv); mode != "" {
		os.Exit(fakeWorker(mode))
	}
	testenv.Main(m)
}

// fakeMaxOperations is the operation cap of the servers the fake workers
// run under.
const fakeMaxOperations = 5

// fakeWorker reads the start frame and then misbehaves as mode says.
func fakeWorker(mode string) int {
	var h [5]byte
	if _, err := io.ReadFull(os.Stdin, h[:]); err != nil {
		return 9
	}
	if _, err := io.CopyN(io.Discard, os.Stdin, int64(binary.BigEndian.Uint32(h[:]))); err != nil {
		return 9
	}
	frame := func(typ byte, v any) []byte {
		p, ok := v.([]byte)
		if !ok {
			p, _ = json.Marshal(v)
		}
		b := binary.BigEndian.AppendUint32(nil, uint32(len(p)))
		b = append(b, typ)
		return append(b, p...)
	}
	send := func(typ byte, v any) { os.Stdout.Write(frame(typ, v)) }
	decision := map[string]any{"time": "2020-01-01T00:00:00Z", "event": "decision", "action": "read",
		"resource": "/fake/before", "decision": "allow", "user": "root", "session": "forged"}
	ok := map[string]any{"exit": 0, "error": nil}
	// The decision ring the server passes, mapped as the real worker maps
	// it, and raw, to write what an honest worker never would.
	ring, err := workerproto.MapRing(os.NewFile(workerproto.RingFD, "ring"))
	if err != nil {
		return 8
	}
	raw, err := unix.Mmap(workerproto.RingFD, 0, 64+workerproto.DefaultRingSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return 8
	}
	put := func(rec []byte) {
		if ring.Put(rec) != nil {
			os.Exit(8)
		}
	}
	before := workerproto.AppendDecision(nil, &workerproto.Decision{Action: "read", Resource: "/fake/before", Allow: true})
	switch mode {
	case "ring-garbage":
		put([]byte("\x01\x01garbage that is no decision record"))
		send(4, ok)
	case "ring-decision-then-garbage":
		put(before)
		put([]byte{2, 1, 4, 'r', 'e', 'a', 'd', 0, 0, 0, 0}) // version 2
		send(4, ok)
	case "ring-bad-head":
		*(*uint64)(unsafe.Pointer(&raw[0])) = 1 << 40
		send(4, ok)
	case "ring-bad-length":
		binary.LittleEndian.PutUint32(raw[64:], 1<<30)
		*(*uint64)(unsafe.Pointer(&raw[0])) = 64
		send(4, ok)
	case "ring-unmarked-print":
		send(3, []byte("leaked\n"))
		send(4, ok)
	case "sync-with-payload":
		send(8, []byte("x"))
		send(4, ok)
	case "ring-truncate":
		// The ring is sealed at its size: a worker cannot shrink it under
		// the server's mapping (the server would die of SIGBUS).
		if unix.Ftruncate(workerproto.RingFD, 0) == nil {
			return 7
		}
		put(before)
		send(4, ok)
	case "ring-killed":
		// A decision put, then the worker dies before it says anything.
		put(before)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case "decision-flood":
		for range 4 * fakeMaxOperations {
			put(before)
		}
		send(4, ok)
	case "exit-without-result":
		send(2, decision)
		return 3
	case "garbage":
		send(2, decision)
		os.Stdout.Write([]byte("\x00\x00\x00\x02\x07hi"))
	case "huge-frame":
		os.Stdout.Write([]byte("\xff\xff\xff\xf0\x03"))
	case "forged-event":
		send(2, map[string]any{"time": "2020-01-01T00:00:00Z", "event": "session.end", "session": "forged"})
	case "bad-exit":
		send(4, map[string]any{"exit": 0, "error": map[string]any{"kind": "ACCESS_DENIED", "message": "x"}})
	case "after-result":
		// In one write, so the server has read both when it handles the
		// result; a message that comes later is the next script's
		// (TestWorkerReuse).
		os.Stdout.Write(append(frame(4, ok), frame(2, decision)...))
	case "forged-identity":
		send(2, decision)
		send(4, map[string]any{"exit": 0, "error": nil})
	default:
		return fakeCatWorker(mode, send, ok) // cat_test.go
	}
	return 0
}
