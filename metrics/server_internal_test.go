package metrics

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestEndpointHoldsBoundedConnections: with every slot taken by clients
// that send nothing, a scrape waits in the backlog and is answered once
// a slot is free; Close ends the server even while it waits for a slot.
func TestEndpointHoldsBoundedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const slots = 2
	s := serve(ln, New(), slots)
	var idle []net.Conn
	for range slots {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	got := make(chan error, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
		resp, err := c.Get("http://" + s.Addr() + "/metrics")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("scrape answered while every slot was held (%v)", err)
	case <-time.After(200 * time.Millisecond): // a negative check: no condition to wait on
	}
	idle[0].Close()
	if err := <-got; err != nil {
		t.Fatalf("scrape after a slot was freed: %v", err)
	}

	// Every slot held again, and an Accept waiting: Close still ends Serve.
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s.Close()
	if err := <-s.Done(); err != nil {
		t.Errorf("Done after Close: %v", err)
	}
}
