package sshserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

type lockedWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

// TestCoalescer: every byte arrives, in order, in no more writes than
// were made; Close sends what is left; a write error reaches the writer.
func TestCoalescer(t *testing.T) {
	w := &lockedWriter{}
	c := newCoalescer(w, 64)
	var want bytes.Buffer
	for i := 0; i < 1000; i++ {
		p := []byte(fmt.Sprintf("header-%d|", i))
		if i%3 == 0 {
			p = bytes.Repeat(p, 20) // larger than max: one write of its own
		}
		want.Write(p)
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	c.Close(10 * time.Second)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !bytes.Equal(w.b.Bytes(), want.Bytes()) {
		t.Fatalf("got %d bytes, want %d, or out of order", w.b.Len(), want.Len())
	}
	if w.writes > 1000 {
		t.Errorf("%d writes for 1000", w.writes)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Error("write after Close succeeded")
	}

	boom := errors.New("boom")
	e := newCoalescer(errWriter{boom}, 64)
	_, _ = e.Write([]byte("a"))
	e.Close(10 * time.Second)
	if _, err := e.Write([]byte("b")); !errors.Is(err, boom) {
		t.Errorf("write after a failed write = %v, want %v", err, boom)
	}

	// A writer that never returns cannot hold Close past its wait.
	pr, pw := io.Pipe()
	defer pr.Close()
	s := newCoalescer(pw, 64)
	_, _ = s.Write([]byte("stuck"))
	start := time.Now()
	s.Close(50 * time.Millisecond)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close waited %v", d)
	}
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }
