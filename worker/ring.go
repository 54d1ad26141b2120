package worker

// The server's end of a worker's decision ring (workerproto.Ring): when
// the reader takes the worker's decisions out of it, and how.

import (
	"errors"
	"os"
	"time"

	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

// errAtMark stops a drain at a print mark.
var errAtMark = errors.New("worker: at a print mark")

// drain logs the decisions the worker put in its ring, in order, up to
// the next print mark (an empty record), and reports whether reading may
// go on. With print set (a Print message is about to be forwarded), it
// also takes that mark, which must be there: the worker puts it before it
// writes the message, so the decisions made before the print are logged
// before it and none made after. A ring the worker could not have
// written honestly, a record that is not a decision record, a missing
// mark and a line that cannot be written stop the reading; the records
// before are logged, nothing after.
func (rd *workerReader) drain(print bool) bool {
	marked := false
	err := rd.ring.Take(func(rec []byte) error {
		if len(rec) == 0 {
			if print && !marked {
				marked = true
				return nil
			}
			return errAtMark
		}
		if marked {
			return errAtMark
		}
		d, err := workerproto.ParseDecision(rec)
		if err != nil {
			return err
		}
		return rd.audit(d)
	})
	if errors.Is(err, errAtMark) {
		err = nil
	}
	if err == nil && print && !marked {
		err = errors.New("worker: worker sent a print it did not mark in its ring")
	}
	return rd.failed(err)
}

// finish logs what the worker left in its ring once it is gone, print
// marks skipped (a worker killed between a mark and its print leaves
// one). A worker that already broke the protocol, or whose line could
// not be written, is not believed further; one that put anything after
// its result breaks the protocol.
func (rd *workerReader) finish() {
	if rd.stopped() {
		return
	}
	if rd.result != nil && rd.ring.Pending() {
		rd.protoErr = errors.New("worker: worker put a decision after its result")
		return
	}
	err := rd.ring.Take(func(rec []byte) error {
		if len(rec) == 0 {
			return nil
		}
		d, err := workerproto.ParseDecision(rec)
		if err != nil {
			return err
		}
		return rd.audit(d)
	})
	rd.failed(err)
}

// quietReader reads the worker's stdout for the frame reader, calling
// quiet each time nothing has come for memPoll, so that the decisions of
// a script that computes without printing are logged while it runs. The
// frame reader asks for more only once it has handled every message it
// was given, so quiet runs between messages (or in the middle of one
// still being written), on the reader's goroutine. When quiet reports
// that reading must stop, Read returns errQuietStop.
type quietReader struct {
	f     *os.File
	quiet func() bool
}

var errQuietStop = errors.New("worker: worker stopped")

func (q *quietReader) Read(p []byte) (int, error) {
	for {
		if err := q.f.SetReadDeadline(time.Now().Add(memPoll)); err != nil {
			// No deadlines on this file, or it was closed (Run's
			// drainGrace): Read says which.
			return q.f.Read(p)
		}
		n, err := q.f.Read(p)
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if !q.quiet() {
			return 0, errQuietStop
		}
	}
}
