package sshserver_test

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/keyhole-dev/keyhole/internal/testenv"
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

// fakeWorker reads the start frame and then misbehaves as mode says.
func fakeWorker(mode string) int {
	var h [5]byte
	if _, err := io.ReadFull(os.Stdin, h[:]); err != nil {
		return 9
	}
	if _, err := io.CopyN(io.Discard, os.Stdin, int64(binary.BigEndian.Uint32(h[:]))); err != nil {
		return 9
	}
	send := func(typ byte, v any) {
		p, ok := v.([]byte)
		if !ok {
			p, _ = json.Marshal(v)
		}
		b := binary.BigEndian.AppendUint32(nil, uint32(len(p)))
		b = append(b, typ)
		os.Stdout.Write(append(b, p...))
	}
	decision := map[string]any{"time": "2020-01-01T00:00:00Z", "event": "decision", "action": "read",
		"resource": "/fake/before", "decision": "allow", "user": "root", "session": "forged"}
	switch mode {
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
		send(4, map[string]any{"exit": 0, "error": nil})
		send(2, decision)
	case "forged-identity":
		send(2, decision)
		send(4, map[string]any{"exit": 0, "error": nil})
	}
	return 0
}
