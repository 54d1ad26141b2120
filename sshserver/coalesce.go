package sshserver

import (
	"io"
	"sync"
	"time"
)

// coalescer sends what is written to w from a goroutine of its own,
// taking whatever has accumulated at once. pkg/sftp writes each reply as
// two writes (a 13-byte header, then the data), and x/crypto/ssh sends
// each write as packets of its own: 32 KiB of file data, which the stock
// client asks for, became a full packet and a 13-byte one, each encrypted
// and written on its own. Through the coalescer, replies that follow each
// other fill whole packets; a lone reply goes out at once (nothing waits
// for more), so nothing is delayed. At most max bytes wait; a writer past
// that blocks until the goroutine has taken them.
type coalescer struct {
	w   io.Writer
	max int

	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	err    error // the first write error; every later Write fails with it
	closed bool
	done   chan struct{} // closed when the goroutine has ended
}

func newCoalescer(w io.Writer, max int) *coalescer {
	c := &coalescer{w: w, max: max, done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	go c.run()
	return c
}

func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.buf) > 0 && len(c.buf)+len(p) > c.max && c.err == nil && !c.closed {
		c.cond.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closed:
		return 0, io.ErrClosedPipe
	}
	c.buf = append(c.buf, p...)
	c.cond.Broadcast()
	return len(p), nil
}

func (c *coalescer) run() {
	defer close(c.done)
	var out []byte
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.buf) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.buf) == 0 {
			return // closed, and everything sent
		}
		out, c.buf = c.buf, out[:0]
		c.cond.Broadcast()
		c.mu.Unlock()
		_, err := c.w.Write(out)
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.buf = nil
			c.cond.Broadcast()
			return
		}
	}
}

// Close sends what is left, waiting at most wait for it (a client that
// reads nothing cannot hold the caller), and fails every later Write.
func (c *coalescer) Close(wait time.Duration) {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
}
