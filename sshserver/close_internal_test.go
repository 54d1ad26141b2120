package sshserver

import (
	"net"
	"runtime"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/keys"
)

// TestCloseStopsAServeThatHasNotStarted: a Close that comes before Serve
// has started accepting (gliderlabs tracks a listener only once its Serve
// runs) still makes Serve return, and a Serve after Close returns at once.
// Before, such a Serve accepted forever and the Close of a short-lived
// server hung its caller.
func TestCloseStopsAServeThatHasNotStarted(t *testing.T) {
	host, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		s, err := New(Config{HostSigners: []gossh.Signer{host}, Auth: &keys.CertRules{}, Policy: nopPolicy{}, Audit: audit.Discard})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(ln) }()
		for range i % 7 {
			runtime.Gosched() // vary how far Serve gets before Close
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Serve = %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Serve still running 10s after Close", i)
		}
	}
	// Serve on a closed server returns, and closes the listener it was given.
	s, err := New(Config{HostSigners: []gossh.Signer{host}, Auth: &keys.CertRules{}, Policy: nopPolicy{}, Audit: audit.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); err != nil {
		t.Fatalf("Serve after Close = %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("the listener of a Serve after Close is still open")
	}
}
