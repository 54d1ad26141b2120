//go:build linux

package hostops

import (
	"bufio"
	"bytes"
	"context"
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
	p, err := h.begin(actionRead, path, notRegular)
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
// positive.
//
// Each byte is looked at once: the cost is linear in what is read, and
// every byte read is charged to the script's read budget (Host.Counters).
// Reading stops with LIMIT_EXCEEDED as soon as a line is found to be
// longer than MaxLineBytes (a file without newlines costs at most that
// much), when the lines wanted together exceed the host's read cap, or
// when the budget is spent. When ctx ends (the script was cancelled or ran
// out of time) Tail stops between two reads with LIMIT_EXCEEDED.
func (h *Host) Tail(ctx context.Context, path string, n int) ([]string, error) {
	p, err := h.begin(actionRead, path, notRegular)
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
	if st.Size == 0 {
		return []string{}, nil
	}
	limit := h.maxRead()
	tooLong := func() error {
		return opError(KindLimitExceeded, actionRead, p.path, "a line is longer than "+strconv.Itoa(MaxLineBytes)+" bytes")
	}
	// Offsets in the file: [end, size) has been read, backwards, into
	// parts (parts[0] is the last piece); eol is the end of the last line
	// (size, less a final newline); lineEnd is the end of the line being
	// scanned; start, once found, is where the first line wanted begins.
	const chunk = 64 << 10
	var parts [][]byte
	size := st.Size
	end, eol, lineEnd, start := size, size, size, int64(-1)
	found := 0
	for end > 0 && start < 0 {
		if err := ctx.Err(); err != nil {
			return nil, opError(KindLimitExceeded, actionRead, p.path, "stopped: "+err.Error())
		}
		left := limit + 1 - (size - end) // never more than one byte past the cap
		if left <= 0 {
			return nil, tooLarge(p.path, limit)
		}
		want := min(int64(chunk), end, left)
		if w := h.Counters.readWant(want); w < want {
			want = max(w, 1) // past the budget: chargeRead says so
		}
		off := end - want
		part := make([]byte, want)
		got, err := preadFull(fd, part, off)
		if err != nil {
			return nil, sysError(actionRead, p.path, err)
		}
		if e := h.Counters.chargeRead(actionRead, p.path, int64(got)); e != nil {
			return nil, e
		}
		if int64(got) < want {
			return nil, opError(KindIOError, actionRead, p.path, "the file shrank while it was read")
		}
		i := len(part)
		if end == size && part[i-1] == '\n' {
			// A final newline ends the last line; it does not start one.
			eol, lineEnd, i = size-1, size-1, i-1
		}
		for start < 0 {
			j := bytes.LastIndexByte(part[:i], '\n')
			if j < 0 {
				break
			}
			nl := off + int64(j)
			if lineEnd-nl-1 > MaxLineBytes {
				return nil, tooLong()
			}
			if found++; found == n {
				start = nl + 1
			}
			lineEnd, i = nl, j
		}
		if start < 0 && lineEnd-off > MaxLineBytes {
			return nil, tooLong()
		}
		parts = append(parts, part)
		end = off
	}
	if start < 0 {
		start = 0 // fewer than n lines: the whole file
	}
	if eol-start+1 > limit+1 {
		return nil, tooLarge(p.path, limit)
	}
	text := make([]byte, 0, size-end)
	for i := len(parts) - 1; i >= 0; i-- {
		text = append(text, parts[i]...)
	}
	lines := bytes.Split(text[start-end:eol-end], []byte("\n"))
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = string(l)
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
