package starlarkrt

import (
	"fmt"
	"io"
	"os"

	"go.starlark.net/starlark"

	"github.com/keyhole-dev/keyhole/hostops"
)

// CatHost is the host operation behind fs.cat; *hostops.Host implements
// it. A Host without it has no fs.cat (the builtin says so).
type CatHost interface {
	Cat(path string, out hostops.FileSender) (int64, error)
}

// fs.cat(path) sends the regular file's bytes to the output, after what
// the script printed before and before what it prints after, and returns
// how many it sent. The bytes never enter the script: the worker passes
// the open file to the server (Options.Files). It is a read of path (one
// decision), charged against the read budget and the output limit; a
// file past either is sent up to the cap and the script ends
// LIMIT_EXCEEDED.
func (r *run) fsCat(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	h, err := r.hostCall(b, args, kwargs, "path", &path)
	if err != nil {
		return nil, err
	}
	ch, ok := h.(CatHost)
	if !ok {
		return nil, &hostops.Error{Kind: hostops.KindIOError, Message: b.Name() + ": not available in this runtime"}
	}
	n, err := ch.Cat(path, catOutput{r})
	if err != nil {
		return nil, err
	}
	return starlark.MakeInt64(n), nil
}

// catOutput is fs.cat's way to the output: within what is left of the
// output limit, through Options.Files or, without it, copied to Stdout.
type catOutput struct{ r *run }

func (c catOutput) SendFile(f *os.File, name string, n int64) (int64, error) {
	out := c.r.out
	if out.err != nil {
		return 0, c.outputLimit()
	}
	m, over := n, false
	if m > out.left {
		m, over = out.left, true
	}
	var (
		sent int64
		err  error
	)
	if c.r.opts.Files != nil {
		sent, err = c.r.opts.Files.SendFile(f, name, m)
	} else {
		sent, err = io.Copy(out.w, io.NewSectionReader(f, 0, m))
	}
	sent = min(max(sent, 0), m)
	out.left -= sent
	if err != nil {
		return sent, err
	}
	if over && sent == m {
		out.err = errOutputLimit
		return sent, c.outputLimit()
	}
	return sent, nil
}

// outputLimit stops the script for its output limit, as print does, and
// returns that error.
func (c catOutput) outputLimit() *Error {
	e := &Error{Kind: hostops.KindLimitExceeded, Message: fmt.Sprintf("output limit of %d bytes exceeded", c.r.opts.MaxOutput)}
	c.r.cancel(e)
	return c.r.stopped()
}
