//go:build linux

package hostops

import (
	"io"
	"strconv"
	"sync/atomic"
)

// Counters counts the bytes one script moves between the host and itself,
// and caps the totals (DESIGN.md, invariant 6: "bytes moved" are limited).
// Every operation that moves bytes charges them here, in the operation
// itself, so no caller can forget:
//
//   - read: what Read, Lines, Tail, Grep, Copy's source and the host facts
//     read from files, and the output Exec and Service keep from a program;
//   - written: what Write, Append and Copy write, and what Exec and Service
//     send to a program's standard input.
//
// A write is charged before it acts: one that would take the total past
// MaxWrite is LIMIT_EXCEEDED and writes nothing. A read is charged as it
// happens, never asks for more than one byte past what is left, and fails
// with LIMIT_EXCEEDED once the total passes MaxRead. The first cap hit is
// kept (Exceeded) and every later charge fails with it: the script is over
// its budget and the runtime ends it. A nil *Counters counts nothing and
// caps nothing. Safe for concurrent use; MaxRead and MaxWrite must not
// change once an operation has used the Counters.
type Counters struct {
	// MaxRead and MaxWrite cap the totals; zero or less means no cap.
	MaxRead  int64
	MaxWrite int64
	// MaxOperations caps the decisions the script's operations make, each
	// one audit line (allowed or denied, allowed() queries included; a
	// rename makes two, a glob one per directory it lists). The decision
	// past the cap is LIMIT_EXCEEDED: its operation is not performed and
	// its audit line is a deny saying why. Zero or less means no cap.
	MaxOperations int64

	read     atomic.Int64
	written  atomic.Int64
	ops      atomic.Int64
	exceeded atomic.Pointer[Error]
}

// Read returns the bytes read so far.
func (c *Counters) Read() int64 {
	if c == nil {
		return 0
	}
	return c.read.Load()
}

// Written returns the bytes written so far.
func (c *Counters) Written() int64 {
	if c == nil {
		return 0
	}
	return c.written.Load()
}

// Operations returns the decisions made so far.
func (c *Counters) Operations() int64 {
	if c == nil {
		return 0
	}
	return c.ops.Load()
}

// chargeOperation counts one decision of action on resource. It returns
// the LIMIT_EXCEEDED error when the count is past MaxOperations.
func (c *Counters) chargeOperation(action, resource string) *Error {
	if c == nil {
		return nil
	}
	if n := c.ops.Add(1); c.MaxOperations > 0 && n > c.MaxOperations {
		return c.exceed(opError(KindLimitExceeded, action, resource,
			"the script's operation limit of "+strconv.FormatInt(c.MaxOperations, 10)+" is exceeded"))
	}
	return nil
}

// Exceeded returns the error of the first cap that was hit, or nil.
func (c *Counters) Exceeded() *Error {
	if c == nil {
		return nil
	}
	return c.exceeded.Load()
}

// err is Exceeded as an error: nil when no cap was hit.
func (c *Counters) err() error {
	if e := c.Exceeded(); e != nil {
		return e
	}
	return nil
}

// readWant returns how many bytes an operation that would read want may
// ask for: at most one more than is left of MaxRead, so that going past
// the cap is seen without reading much more.
func (c *Counters) readWant(want int64) int64 {
	if c == nil || c.MaxRead <= 0 {
		return want
	}
	left := max(c.MaxRead-c.read.Load(), 0)
	return min(want, left+1)
}

// chargeRead counts n bytes read by action on resource. It returns the
// LIMIT_EXCEEDED error when the total is past MaxRead, now or before.
func (c *Counters) chargeRead(action, resource string, n int64) *Error {
	if c == nil {
		return nil
	}
	if e := c.exceeded.Load(); e != nil {
		c.read.Add(n)
		return e
	}
	if total := c.read.Add(n); c.MaxRead > 0 && total > c.MaxRead {
		return c.exceed(opError(KindLimitExceeded, action, resource,
			"the script's read limit of "+strconv.FormatInt(c.MaxRead, 10)+" bytes is exceeded"))
	}
	return nil
}

// chargeWrite counts n bytes that action on resource is about to write. If
// they would take the total past MaxWrite, nothing is counted and the
// LIMIT_EXCEEDED error is returned: the caller must not write.
func (c *Counters) chargeWrite(action, resource string, n int64) *Error {
	if c == nil {
		return nil
	}
	if e := c.exceeded.Load(); e != nil {
		return e
	}
	for {
		old := c.written.Load()
		if c.MaxWrite > 0 && old+n > c.MaxWrite {
			return c.exceed(opError(KindLimitExceeded, action, resource,
				"the script's write limit of "+strconv.FormatInt(c.MaxWrite, 10)+" bytes would be exceeded"))
		}
		if c.written.CompareAndSwap(old, old+n) {
			return nil
		}
	}
}

// exceed records e as the first cap hit, unless one was already, and
// returns the recorded one.
func (c *Counters) exceed(e *Error) *Error {
	if c.exceeded.CompareAndSwap(nil, e) {
		return e
	}
	return c.exceeded.Load()
}

// countingReader charges what it reads to Counters and fails with the
// counters' error once the read cap is passed. Each Read asks for at most
// one byte more than is left.
type countingReader struct {
	r                io.Reader
	c                *Counters
	action, resource string
}

func (cr *countingReader) Read(p []byte) (int, error) {
	if e := cr.c.Exceeded(); e != nil {
		return 0, e
	}
	if want := cr.c.readWant(int64(len(p))); want < int64(len(p)) {
		p = p[:max(want, 1)]
	}
	n, err := cr.r.Read(p)
	if e := cr.c.chargeRead(cr.action, cr.resource, int64(n)); e != nil {
		return n, e
	}
	return n, err
}
