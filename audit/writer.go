package audit

// The audit log writer: one JSON line per event, one write per line, and
// fail closed (DESIGN.md, invariant 5).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// Writer writes events as JSON lines. It is safe for concurrent use: a
// line is encoded and written with one write call while its lock is held.
//
// A line that cannot be written whole (a short write, ENOSPC, EIO, a file
// removed from under the writer that cannot be created again) makes Log
// return an error, and the writer remembers that it is broken. While it
// is broken, every Log and Ready first tries to write an audit.resumed
// line, saying since when lines failed and how many were lost; only when
// that line is written are later lines written again. Notify is told once
// when lines start failing and once when they are written again.
type Writer struct {
	mu     sync.Mutex
	out    io.Writer
	file   *os.File  // out, when Open opened a file by path
	path   string    // the path Open opened, "" otherwise
	closer io.Closer // closed by Close when there is no file (OpenSyslog)
	buf    []byte
	broken *outage
	notify func(error)
}

// outage is what a broken writer remembers.
type outage struct {
	since   time.Time // time of the first line that failed
	err     error     // why it failed
	lost    int       // lines not written since
	partial bool      // a failed write left part of a line
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{out: w} }

// Open opens the audit log named by path for appending ("-" is stdout). The
// file is created with mode 0600 if it does not exist. If it is removed
// later (its link count drops to 0), the next line creates it again at
// path; when that fails, the line fails.
func Open(path string) (*Writer, error) {
	if path == "-" {
		return NewWriter(os.Stdout), nil
	}
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	return &Writer{out: f, file: f, path: path}, nil
}

// openLog opens the log at path for appending, creating it (0600) when
// missing. A symlink at path is refused (O_NOFOLLOW): whoever could plant
// one in the log's directory would otherwise point the server's appends at
// any file it may write.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("audit: open %s: it is a symlink; name the log's real path", path)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return f, nil
}

// Notify sets fn to be called, outside the writer's lock, with the error
// when lines start failing and with nil when they are written again. Set
// it before the writer is used.
func (w *Writer) Notify(fn func(error)) { w.notify = fn }

// Log writes e as one line, its strings capped (MaxField, MaxPathField). A
// zero Time is set to now. It returns an error when the line was not
// written whole.
func (w *Writer) Log(e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	w.mu.Lock()
	c, err := w.log(e)
	w.mu.Unlock()
	w.tell(c)
	return err
}

// Ready returns nil when lines can be written: at once when the writer is
// not broken, else when an audit.resumed line could be written now.
func (w *Writer) Ready() error {
	w.mu.Lock()
	c, err := w.resume(time.Now())
	w.mu.Unlock()
	w.tell(c)
	return err
}

// change is a transition to report: broken (err != nil) or healthy again.
type change struct {
	happened bool
	err      error
}

func (w *Writer) tell(c change) {
	if c.happened && w.notify != nil {
		w.notify(c.err)
	}
}

// log writes e, resuming first if the writer is broken. w.mu is held.
func (w *Writer) log(e Event) (change, error) {
	c, err := w.resume(e.Time)
	if err != nil {
		w.broken.lost++
		return c, err
	}
	if err := w.write(&e, false); err != nil {
		if errors.Is(err, errEncode) {
			return c, err
		}
		w.fail(e.Time, err)
		return change{happened: true, err: err}, err
	}
	return c, nil
}

// resume writes the audit.resumed line of a broken writer. It returns nil
// (and a change) when the writer is healthy afterwards. w.mu is held.
func (w *Writer) resume(now time.Time) (change, error) {
	o := w.broken
	if o == nil {
		return change{}, nil
	}
	e := Event{Time: now, Event: Resumed, Reason: fmt.Sprintf("audit lines failed from %s (%d not written): %v",
		o.since.UTC().Format(time.RFC3339Nano), o.lost, o.err)}
	if err := w.write(&e, o.partial); err != nil {
		var we *writeError
		if errors.As(err, &we) && we.partial {
			o.partial = true
		}
		return change{}, fmt.Errorf("audit: log unwritable since %s: %w", o.since.UTC().Format(time.RFC3339), err)
	}
	w.broken = nil
	return change{happened: true}, nil
}

// fail records that a line failed. w.mu is held.
func (w *Writer) fail(now time.Time, err error) {
	var we *writeError
	partial := errors.As(err, &we) && we.partial
	w.broken = &outage{since: now, err: err, lost: 1, partial: partial}
}

var errEncode = errors.New("audit: event cannot be encoded")

// writeError is a line that was not written whole.
type writeError struct {
	err     error
	partial bool // some of the line was written
}

func (e *writeError) Error() string { return "audit: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// write encodes e and writes it with one write call, after a newline when
// a failed write left part of a line. w.mu is held.
func (w *Writer) write(e *Event, newline bool) error {
	b := w.buf[:0]
	if newline {
		b = append(b, '\n')
	}
	c := capped(*e)
	b, err := c.appendJSON(b, true)
	if err != nil {
		return fmt.Errorf("%w: %v", errEncode, err)
	}
	b = append(b, '\n')
	if cap(b) <= 64<<10 {
		w.buf = b
	}
	if err := w.reopenIfRemoved(); err != nil {
		return &writeError{err: err}
	}
	n, err := w.out.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return &writeError{err: err, partial: n > 0}
	}
	return nil
}

// reopenIfRemoved creates the log again at its path when the file the
// writer holds has been removed: lines written to it would be lost.
func (w *Writer) reopenIfRemoved() error {
	if w.file == nil || w.path == "" {
		return nil
	}
	fi, err := w.file.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", w.path, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Nlink > 0 {
		return nil
	}
	f, err := openLog(w.path)
	if err != nil {
		return fmt.Errorf("%s was removed and cannot be created again: %w", w.path, errors.Unwrap(err))
	}
	_ = w.file.Close()
	w.file, w.out = f, f
	return nil
}

// Close closes the underlying file, if Open opened one.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file == nil {
		if w.closer != nil {
			return w.closer.Close()
		}
		return nil
	}
	return w.file.Close()
}
