package worker

// The worker's end of fs.cat (workerproto.Cat): hostops has pinned and
// authorized the file and opened it for reading; the worker passes the
// descriptor to the server, which streams it, and waits for the count.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

// catPipe passes fs.cat's files to the server. One Cat is outstanding at
// a time: a script runs one operation at a time.
type catPipe struct {
	w    *workerproto.Writer
	fds  *os.File        // the descriptor socket, or nil
	ctx  context.Context // ends when stdin ends: no CatDone can come
	done chan workerproto.CatDone
}

// SendFile is hostops.FileSender: it sends at most n bytes of f to the
// session's output and returns how many were sent. With a descriptor
// socket the server streams f itself; without one (Serve) the bytes go
// as Print messages.
func (p printPipe) SendFile(f *os.File, name string, n int64) (int64, error) {
	if p.cat == nil || p.cat.fds == nil {
		return p.printFile(f, n)
	}
	// Decisions put so far are taken by the server before it handles the
	// Cat, as before any message: the cat's own line is written before
	// its bytes go out.
	if err := workerproto.SendFD(p.cat.fds, f); err != nil {
		return 0, err
	}
	if err := p.w.WriteJSON(workerproto.TypeCat, &workerproto.Cat{Path: name, Bytes: n}); err != nil {
		return 0, err
	}
	select {
	case d := <-p.cat.done:
		if d.Bytes < 0 || d.Bytes > n {
			return 0, fmt.Errorf("worker: server says it sent %d bytes of %d", d.Bytes, n)
		}
		if d.Error != "" {
			return d.Bytes, errors.New(d.Error)
		}
		return d.Bytes, nil
	case <-p.cat.ctx.Done():
		return 0, errors.New("worker: session ended while the file was sent")
	}
}

// printFile sends at most n bytes of f as Print messages.
func (p printPipe) printFile(f *os.File, n int64) (int64, error) {
	r := io.NewSectionReader(f, 0, n)
	buf := make([]byte, catChunk)
	var sent int64
	for {
		m, err := io.ReadFull(r, buf)
		if m > 0 {
			if _, werr := p.Write(buf[:m]); werr != nil {
				return sent, werr
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
