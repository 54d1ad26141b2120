package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
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
	// maxConns bounds the connections the endpoint holds at once; more
	// wait in the kernel's backlog. The endpoint shares the process's
	// descriptors with the SSH server, so whoever can reach it must not
	// be able to use them up.
	maxConns = 16
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
	return serve(ln, m, maxConns)
}

func serve(ln net.Listener, m *Metrics, conns int) *Server {
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
		err := s.srv.Serve(newLimitListener(ln, conns))
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

// limitListener accepts a connection only while fewer than cap(sem) it
// accepted are open.
// Closing it ends an Accept waiting for a slot.
type limitListener struct {
	net.Listener
	sem    chan struct{}
	closed chan struct{}
	close  func()
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	l := &limitListener{Listener: ln, sem: make(chan struct{}, n), closed: make(chan struct{})}
	l.close = sync.OnceFunc(func() { close(l.closed) })
	return l
}

func (l *limitListener) Close() error {
	l.close()
	return l.Listener.Close()
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.sem })}, nil
}

// limitConn gives its slot back when it is closed, once.
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
