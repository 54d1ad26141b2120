package workerproto_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

func frame(n uint32, t byte, payload string) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b, n)
	b[4] = t
	return append(b, payload...)
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := workerproto.NewWriter(&buf)
	start := &workerproto.Start{
		Filename:  "script",
		Script:    "print(1)",
		Args:      []byte(`{"a":1}`),
		Principal: authz.Principal{UserID: "agent-7", Role: "logs", Principals: []string{"logs"}},
		Policies:  map[string][]byte{"a.cedar": []byte("permit")},
		Limits:    workerproto.Limits{MaxSteps: 5, MaxWall: time.Second, MaxMemory: 1 << 20},
	}
	if err := w.WriteJSON(workerproto.TypeStart, start); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRaw(workerproto.TypePrint, []byte("\xff\x00bin\n")); err != nil {
		t.Fatal(err)
	}
	r := workerproto.NewReader(&buf, 0)
	typ, p, err := r.Next()
	if err != nil || typ != workerproto.TypeStart {
		t.Fatalf("Next = %v, %v", typ, err)
	}
	var got workerproto.Start
	if err := workerproto.Decode(typ, p, &got); err != nil {
		t.Fatal(err)
	}
	if got.Script != start.Script || string(got.Args) != `{"a":1}` || got.Principal.UserID != "agent-7" ||
		string(got.Policies["a.cedar"]) != "permit" || got.Limits != start.Limits {
		t.Fatalf("decoded %+v", got)
	}
	typ, p, err = r.Next()
	if err != nil || typ != workerproto.TypePrint || string(p) != "\xff\x00bin\n" {
		t.Fatalf("print frame = %v %q %v", typ, p, err)
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

// endReader returns its data, then io.EOF: an oversized frame must be
// refused as too large, not reported as truncated after a read attempt.
type endReader struct {
	data []byte
}

func (f *endReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestBadFrames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated-header", []byte{0, 0, 1}, "truncated frame header"},
		{"truncated-payload", frame(10, 3, "abc"), "truncated print frame"},
		{"unknown-type-zero", frame(0, 0, ""), "unknown frame type 0"},
		{"unknown-type-high", frame(0, 200, ""), "unknown frame type 200"},
		{"unknown-type-past-cat-done", frame(0, 11, ""), "unknown frame type 11"},
		{"too-large", frame(1<<31, 3, ""), "frame too large"},
		{"max-length", frame(0xffffffff, 2, ""), "frame too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := workerproto.NewReader(&endReader{data: tt.in}, 1<<20)
			_, _, err := r.Next()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Next error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestFrameLimitIsInclusive(t *testing.T) {
	t.Parallel()
	r := workerproto.NewReader(bytes.NewReader(frame(4, 3, "abcd")), 4)
	if _, p, err := r.Next(); err != nil || string(p) != "abcd" {
		t.Fatalf("Next = %q, %v", p, err)
	}
}

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		want    string
	}{
		{"not-json", `exit 0`, "invalid character"},
		{"unknown-field", `{"exit":0,"admin":true}`, `unknown field "admin"`},
		{"trailing-data", `{"exit":0} {"exit":1}`, "data after the object"},
		{"wrong-type", `{"exit":"zero"}`, "cannot unmarshal"},
		{"empty", ``, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var res workerproto.Result
			err := workerproto.Decode(workerproto.TypeResult, []byte(tt.payload), &res)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestConcurrentWritesStayWhole checks that frames written from several
// goroutines never interleave.
func TestConcurrentWritesStayWhole(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var buf bytes.Buffer
	w := workerproto.NewWriter(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		// Write in two halves, as a pipe may take a large write.
		half := len(p) / 2
		buf.Write(p[:half])
		buf.Write(p[half:])
		return len(p), nil
	}))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_ = w.WriteRaw(workerproto.TypePrint, bytes.Repeat([]byte{byte('a' + i)}, 1000))
			}
		}()
	}
	wg.Wait()
	r := workerproto.NewReader(&buf, 0)
	for n := 0; ; n++ {
		_, p, err := r.Next()
		if err == io.EOF {
			if n != 800 {
				t.Fatalf("read %d frames, want 800", n)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 1000 || bytes.Count(p, p[:1]) != 1000 {
			t.Fatalf("frame %d mixed: %q...", n, p[:20])
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
