//go:build linux

package hostops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Sha256 returns the SHA-256 of the contents of the regular file at path,
// as 64 lower-case hex digits (action "read": whoever may read a file may
// learn its hash). It is how a client learns whether a file it would send
// is already there without the file crossing the wire.
//
// The file is pinned, authorized and hashed as Read reads it: symlinks
// are followed and their target is what is authorized and hashed, through
// the pinned descriptor (a name swapped after the decision does not
// change what is hashed), and a directory, FIFO, socket or device is
// INVALID_ARGUMENT, never opened. The file is streamed, so its size costs
// no memory and is not bounded by the host's read cap; every byte hashed
// counts against the script's read budget (Host.Counters), and hashing
// stops with LIMIT_EXCEEDED once the budget is spent or when ctx ends
// (the script was cancelled or ran out of time).
func (h *Host) Sha256(ctx context.Context, path string) (string, error) {
	p, err := h.begin(actionRead, path, notRegular)
	if err != nil {
		return "", err
	}
	defer p.close()
	fd, err := p.reopen(unix.O_RDONLY)
	if err != nil {
		return "", sysError(actionRead, p.path, err)
	}
	f := os.NewFile(uintptr(fd), p.path)
	defer f.Close()
	var src io.Reader = f
	if h.Counters != nil {
		src = &countingReader{r: f, c: h.Counters, action: actionRead, resource: p.path}
	}
	sum := sha256.New()
	buf := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return "", opError(KindLimitExceeded, actionRead, p.path, "stopped: "+err.Error())
		}
		n, err := src.Read(buf)
		sum.Write(buf[:n])
		if e, ok := err.(*Error); ok {
			return "", e // the script's read budget is spent
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", sysError(actionRead, p.path, unwrapPathError(err))
		}
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}
