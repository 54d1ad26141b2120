package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Bounds of the HTTP server: a scraper that is slow to send its request
// or to read the answer is cut off, so that open connections to the
// endpoint cannot pile up.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Server serves GET /metrics over HTTP; every other path is 404.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan error
}

// Listen starts serving m on addr (host:port; port 0 picks a free one).
// Errors is told, at most once, if serving stops for any reason but Close.
func Listen(addr string, m *Metrics) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return Serve(ln, m), nil
}

// Serve serves m on ln, which it closes on Close.
func Serve(ln net.Listener, m *Metrics) *Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	s := &Server{ln: ln, done: make(chan error, 1), srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else if err != nil {
			err = fmt.Errorf("metrics: serve: %w", err)
		}
		s.done <- err
	}()
	return s
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Done receives the error that stopped serving (nil after Close), once.
func (s *Server) Done() <-chan error { return s.done }

// Close stops the server and closes every connection to it.
func (s *Server) Close() error {
	return s.srv.Close()
}
