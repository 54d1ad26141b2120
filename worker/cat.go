package worker

// The server's end of fs.cat (workerproto.Cat): the worker passes an open
// file it has pinned and authorized; the server streams it to the client,
// within the script's output and read caps, and says how much it sent.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

// catWallMargin is how long past MaxWall (from the start of Run) a stream
// may go on: the worker stops its own script at MaxWall, and should see
// that before the server cuts the stream.
const catWallMargin = time.Second

// catDeadline is when a run's streams stop: catWallMargin past maxWall
// from now, or never when maxWall is not set (the zero time).
func catDeadline(maxWall time.Duration) time.Time {
	if maxWall <= 0 {
		return time.Time{}
	}
	return time.Now().Add(maxWall + catWallMargin)
}

// catChunk is how much of a file the server sends through Print at a
// time when the caller streams no files itself (RunOptions.Cat is nil).
const catChunk = 256 << 10

// errCatHalted is why a stream stopped early: the script's time ran out,
// the session ended or the worker was killed.
var errCatHalted = errors.New("stream stopped: the script's time ran out or its session ended")

// catter streams one run's fs.cat files. It is owned by the reading
// goroutine; halt may be set from any.
type catter struct {
	fds      *os.File // the server's end of the descriptor socket
	out      func(io.Reader, string) (int64, error)
	print    func([]byte) error
	maxRead  int64     // the script's read cap; 0 none
	read     int64     // bytes streamed so far, all fs.cat calls of the run
	deadline time.Time // zero: none
	halt     *atomic.Bool
}

// catFile handles a Cat message: it takes the descriptor the worker sent
// before it, streams what the caps allow, and answers with a CatDone. It
// reports whether reading may go on; a worker that broke the protocol
// (no descriptor, not a readable regular file, more asked than its read
// cap) or that asked for more than is left of its output cap is stopped.
func (rd *workerReader) catFile(p []byte) bool {
	var c workerproto.Cat
	if err := workerproto.Decode(workerproto.TypeCat, p, &c); err != nil {
		rd.protoErr = err
		return false
	}
	if rd.cat.fds == nil {
		rd.protoErr = errors.New("worker: worker sent a cat message, and has no descriptor socket")
		return false
	}
	f, err := workerproto.RecvFD(rd.cat.fds)
	if err != nil {
		rd.protoErr = err
		return false
	}
	defer f.Close()
	if err := workerproto.CheckCatFile(f); err != nil {
		rd.protoErr = err
		return false
	}
	if c.Bytes < 0 {
		rd.protoErr = fmt.Errorf("worker: worker asked to send %d bytes", c.Bytes)
		return false
	}
	if rd.cat.maxRead > 0 && c.Bytes > rd.cat.maxRead-rd.cat.read {
		rd.protoErr = fmt.Errorf("worker: worker asked to send %d bytes, past what is left of its read limit of %d",
			c.Bytes, rd.cat.maxRead)
		return false
	}
	n, over := c.Bytes, false
	if rd.maxOutput > 0 {
		if left := max(rd.maxOutput-rd.output, 0); n > left {
			n, over = left, true
		}
	}
	// From the file's start, whatever its offset: pread.
	r := &haltReader{r: io.NewSectionReader(f, 0, n), c: &rd.cat}
	sent, err := rd.cat.send(r, c.Path)
	rd.output += sent
	rd.cat.read += sent
	if over && sent == n {
		rd.overOutput = true // as for a print past the cap: the worker is stopped
		return false
	}
	done := workerproto.CatDone{Bytes: sent}
	if err != nil {
		done.Error = err.Error()
	}
	// A worker that has stopped reading its stdin finds out when it is
	// killed.
	_ = rd.confirm.WriteJSON(workerproto.TypeCatDone, &done)
	return true
}

// send streams r to the client.
func (c *catter) send(r io.Reader, path string) (int64, error) {
	if c.out != nil {
		return c.out(r, path)
	}
	var sent int64
	buf := make([]byte, catChunk)
	for {
		m, err := io.ReadFull(r, buf)
		if m > 0 {
			if perr := c.print(buf[:m]); perr != nil {
				return sent, perr
			}
			sent += int64(m)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return sent, nil
		}
		if err != nil {
			return sent, err
		}
	}
}

// haltReader reads r until the stream must stop (catter.halt, the
// deadline).
type haltReader struct {
	r io.Reader
	c *catter
}

func (h *haltReader) Read(p []byte) (int, error) {
	if h.c.halt.Load() || !h.c.deadline.IsZero() && time.Now().After(h.c.deadline) {
		return 0, errCatHalted
	}
	return h.r.Read(p)
}
