//go:build linux

package hostops

import (
	"errors"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// DefaultMaxReadBytes is the most Read returns when neither its caller nor
// Host.MaxReadBytes sets a cap: 64 MiB.
const DefaultMaxReadBytes int64 = 64 << 20

// Read returns the contents of the regular file at path (action "read").
//
// If 0 < maxBytes < the host's cap (Host.MaxReadBytes), Read returns at most
// maxBytes bytes, silently cut: ask for one byte more to learn whether there
// was more. Otherwise (maxBytes ≤ 0 means no cap from the caller) a file
// longer than the host's cap is LIMIT_EXCEEDED and nothing is returned.
//
// Symlinks are followed and their target is what is authorized. A
// directory, FIFO, socket or device is INVALID_ARGUMENT, decided from the
// pinned descriptor: such objects are never opened (a FIFO would block).
func (h *Host) Read(path string, maxBytes int64) ([]byte, error) {
	p, err := h.begin(actionRead, path, notRegular)
	if err != nil {
		return nil, err
	}
	defer p.close()
	return h.readPinned(p, maxBytes, catHint)
}

// catHint ends Read's error for a file over the host's cap: the bytes of
// such a file can still reach the session's output (Cat).
const catHint = "; fs.cat sends a file of any size to the output without holding it"

// readPinned reads the pinned regular file p as Read does; hint ends the
// error of a file over the host's cap.
func (h *Host) readPinned(p *pinned, maxBytes int64, hint string) ([]byte, error) {
	limit, strict := h.maxRead(), true
	if maxBytes > 0 && maxBytes < limit {
		limit, strict = maxBytes, false
	}
	if strict && p.st.Size > limit {
		return nil, withHint(tooLarge(p.path, limit), hint)
	}
	fd, err := p.reopen(unix.O_RDONLY)
	if err != nil {
		return nil, sysError(actionRead, p.path, err)
	}
	f := os.NewFile(uintptr(fd), p.path)
	defer f.Close()
	want := limit
	if strict {
		want++ // one byte more tells a file that grew past the cap
	}
	// Never more than one byte past the script's read budget: going past
	// it is LIMIT_EXCEEDED, never a silently shorter read.
	want = h.Counters.readWant(want)
	data, err := readAtMost(f, want, p.st.Size)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, sysError(actionRead, p.path, err)
	}
	if e := h.Counters.chargeRead(actionRead, p.path, int64(len(data))); e != nil {
		return nil, e
	}
	if strict && int64(len(data)) > limit {
		return nil, withHint(tooLarge(p.path, limit), hint)
	}
	return data, nil
}

func (h *Host) maxRead() int64 {
	if h.MaxReadBytes > 0 {
		return h.MaxReadBytes
	}
	return DefaultMaxReadBytes
}

func tooLarge(path string, limit int64) *Error {
	return opError(KindLimitExceeded, actionRead, path, "file is larger than the read limit of "+strconv.FormatInt(limit, 10)+" bytes")
}

// withHint is e with hint appended to its message.
func withHint(e *Error, hint string) *Error {
	e.Message += hint
	return e
}

// readAtMost reads r to EOF or until n bytes, whichever comes first. size is
// a hint (a file's st_size, which /proc and /sys report as 0 or 4096).
func readAtMost(r io.Reader, n, size int64) ([]byte, error) {
	c := min(max(size+1, 512), n)
	buf := make([]byte, 0, c)
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), n))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}
