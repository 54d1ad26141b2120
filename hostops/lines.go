//go:build linux

package hostops

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// MaxLineBytes is the longest line Lines, Tail and Grep handle; a longer
// one is LIMIT_EXCEEDED.
const MaxLineBytes = 1 << 20

// Lines returns the lines of the regular file at path (action "read"),
// without their "\n" (a final line without one counts too; "\r" is kept).
// With maxLines > 0 it stops after that many lines, so the start of a file
// of any size can be read; it never reads more than the host's read cap
// (Host.MaxReadBytes): a file (or, with maxLines, a first maxLines lines)
// larger than that is LIMIT_EXCEEDED. Symlinks are followed as Read
// follows them.
func (h *Host) Lines(path string, maxLines int) ([]string, error) {
	var out []string
	err := h.scanLines(path, func(_ int64, line []byte) bool {
		out = append(out, string(line))
		return maxLines <= 0 || len(out) < maxLines
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// scanLines reads the regular file at path line by line, calling fn with
// each line's number (from 1) and text until fn returns false.
func (h *Host) scanLines(path string, fn func(n int64, line []byte) bool) error {
	p, err := h.begin(actionRead, path, refuseRead)
	if err != nil {
		return err
	}
	defer p.close()
	fd, err := p.reopen(unix.O_RDONLY)
	if err != nil {
		return sysError(actionRead, p.path, err)
	}
	f := os.NewFile(uintptr(fd), p.path)
	defer f.Close()
	limit := h.maxRead()
	var src io.Reader = &io.LimitedReader{R: f, N: limit + 1}
	if h.Counters != nil {
		src = &countingReader{r: src, c: h.Counters, action: actionRead, resource: p.path}
	}
	r := bufio.NewReaderSize(src, 64<<10)
	var read int64
	var long []byte
	for n := int64(1); ; n++ {
		line, err := r.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			long = append(long[:0:0], line...)
			for err == bufio.ErrBufferFull && len(long) <= MaxLineBytes {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			if len(long) > MaxLineBytes {
				return opError(KindLimitExceeded, actionRead, p.path, "line "+strconv.FormatInt(n, 10)+" is longer than "+strconv.Itoa(MaxLineBytes)+" bytes")
			}
			line = long
		}
		read += int64(len(line))
		if read > limit {
			return tooLarge(p.path, limit)
		}
		if e, ok := err.(*Error); ok {
			return e // the script's read budget is spent
		}
		if err != nil && err != io.EOF {
			return sysError(actionRead, p.path, unwrapPathError(err))
		}
		if len(line) == 0 && err == io.EOF {
			return h.Counters.err()
		}
		if !fn(n, bytes.TrimSuffix(line, []byte("\n"))) || err == io.EOF {
			// Reading ahead may have passed the script's read budget.
			return h.Counters.err()
		}
	}
}

// Tail returns the last n lines of the regular file at path (action
// "read"), as Lines splits them, reading the file backwards from its end,
// so the tail of a log of any size costs what the lines cost. n must be
// positive. Lines that together exceed the host's read cap are
// LIMIT_EXCEEDED.
func (h *Host) Tail(path string, n int) ([]string, error) {
	p, err := h.begin(actionRead, path, refuseRead)
	if err != nil {
		return nil, err
	}
	defer p.close()
	fd, err := p.reopen(unix.O_RDONLY)
	if err != nil {
		return nil, sysError(actionRead, p.path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, sysError(actionRead, p.path, err)
	}
	limit := h.maxRead()
	const chunk = 64 << 10
	var buf []byte // the end of the file, read so far
	end := st.Size
	for end > 0 {
		if bytes.Count(bytes.TrimSuffix(buf, []byte("\n")), []byte("\n")) >= n {
			break
		}
		size := min(int64(chunk), end)
		if int64(len(buf))+size > limit+1 {
			size = limit + 1 - int64(len(buf))
		}
		if size <= 0 {
			return nil, tooLarge(p.path, limit)
		}
		if want := h.Counters.readWant(size); want < size {
			size = max(want, 1) // past the budget: chargeRead says so
		}
		part := make([]byte, size)
		got, err := preadFull(fd, part, end-size)
		if err != nil {
			return nil, sysError(actionRead, p.path, err)
		}
		if e := h.Counters.chargeRead(actionRead, p.path, int64(got)); e != nil {
			return nil, e
		}
		buf = append(part[:got], buf...)
		end -= size
	}
	lines := bytes.Split(bytes.TrimSuffix(buf, []byte("\n")), []byte("\n"))
	if end > 0 || len(lines) > n {
		// The first line may be a partial one: only whole lines count.
		lines = lines[len(lines)-min(n, len(lines)-1):]
	}
	if len(buf) == 0 {
		return []string{}, nil
	}
	out := make([]string, len(lines))
	var total int
	for i, l := range lines {
		if len(l) > MaxLineBytes {
			return nil, opError(KindLimitExceeded, actionRead, p.path, "a line is longer than "+strconv.Itoa(MaxLineBytes)+" bytes")
		}
		total += len(l) + 1
		out[i] = string(l)
	}
	if int64(total) > limit+1 {
		return nil, tooLarge(p.path, limit)
	}
	return out, nil
}

// preadFull reads len(b) bytes at off, or fewer at the end of the file.
func preadFull(fd int, b []byte, off int64) (int, error) {
	got := 0
	for got < len(b) {
		n, err := unix.Pread(fd, b[got:], off+int64(got))
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return got, err
		}
		if n == 0 {
			break
		}
		got += n
	}
	return got, nil
}
