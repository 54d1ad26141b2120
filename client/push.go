package client

// Pushing files to a host over one connection: a script over the
// structured subsystem hashes the destinations on the host (fs.sha256),
// the files whose content differs go through the sftp subsystem (which
// makes each upload atomic on the server), then an optional script runs
// where something changed.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
)

// PushFile is one file to push: a local file and its absolute path on
// the host, with the local content's size and SHA-256.
type PushFile struct {
	Local  string `json:"local"`
	Remote string `json:"remote"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// NewPushFile hashes the regular file local for pushing to remote, an
// absolute, clean path.
func NewPushFile(local, remote string) (PushFile, error) {
	if !path.IsAbs(remote) {
		return PushFile{}, fmt.Errorf("client: push %s: destination %q is not an absolute path", local, remote)
	}
	if path.Clean(remote) != remote || remote == "/" {
		return PushFile{}, fmt.Errorf("client: push %s: destination %q is not a clean file path", local, remote)
	}
	// Checked before it is opened: opening a FIFO would block.
	if fi, err := os.Stat(local); err != nil {
		return PushFile{}, fmt.Errorf("client: push: %w", err)
	} else if !fi.Mode().IsRegular() {
		return PushFile{}, fmt.Errorf("client: push %s: not a regular file", local)
	}
	f, err := os.OpenFile(local, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return PushFile{}, fmt.Errorf("client: push: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return PushFile{}, fmt.Errorf("client: push %s: not a regular file", local)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return PushFile{}, fmt.Errorf("client: push: read %s: %w", local, err)
	}
	return PushFile{Local: local, Remote: remote, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// PushOptions say how a push goes.
type PushOptions struct {
	// Mode, when not nil, is the permission bits (0 to 0o777) every
	// pushed file must have: set with an sftp setstat on the upload, and
	// on a file whose content is already there but whose mode differs.
	// Nil keeps an existing file's mode; a new file gets 0o644.
	Mode *os.FileMode
	// Then, when not "", is a script run on the host after the upload
	// when at least one file changed, with ThenArgs.
	Then     string
	ThenArgs map[string]any
	// Timeout bounds the whole push on the host (hash check, uploads and
	// the Then script); 0 means only ctx bounds it.
	Timeout time.Duration
	// Progress, when set, is called with the bytes uploaded as they go,
	// from the goroutine that called Push.
	Progress func(n int64)
}

// PushResult is what a push did on a host.
type PushResult struct {
	Changed   []string // remote paths written (or chmodded), in order
	Unchanged []string // remote paths that already held the content (and mode)
	// Check is the hash script's result; Then the Then script's, nil
	// when it did not run.
	Check *Result
	Then  *Result
}

// PushError is an sftp operation of a push that failed.
type PushError struct {
	Host, Op, Path string
	Err            error
}

func (e *PushError) Error() string {
	return fmt.Sprintf("sftp %s %s: %v", e.Op, e.Path, e.Err)
}
func (e *PushError) Unwrap() error { return e.Err }

// Denied says the server's policy refused the operation.
func (e *PushError) Denied() bool {
	var se *sftp.StatusError
	return errors.Is(e.Err, os.ErrPermission) || (errors.As(e.Err, &se) && se.FxCode() == sftp.ErrSSHFxPermissionDenied)
}

// checkScript hashes args["paths"] on the host: [sha256, mode] each, or
// None for a file that does not exist. Any other error than NOT_FOUND
// (a denied read, a directory) is raised again by repeating the call
// uncaught, so the script ends with it (ACCESS_DENIED ends it with exit
// 13) and nothing is uploaded blind.
const checkScript = `def check(p):
    h, err = catch(fs.sha256, p)
    if err != None:
        if err.kind != "NOT_FOUND":
            fs.sha256(p)
        return None
    if args["mode"]:
        return [h, fs.stat(p).mode]
    return [h, None]

result([check(p) for p in args["paths"]])
`

// SFTP opens an sftp session on the client's connection; close it when
// done (the connection stays open).
func (c *Client) SFTP() (*sftp.Client, error) {
	sc, err := sftp.NewClient(c.ssh)
	if err != nil {
		return nil, fmt.Errorf("client: %s: subsystem sftp: %w", c.target, err)
	}
	return sc, nil
}

// Push pushes files to the host over the client's connection. It runs
// one script that hashes every destination on the host; uploads through
// sftp the files whose content (or, with Mode, mode) differs; then, when
// something changed, runs opts.Then. The error says why the push did not
// end: a script that ends with an error stops it too, as a Result with
// Exit not 0 in res.Check or res.Then and a nil error. Files uploaded
// before a failure stay uploaded (res.Changed).
func (c *Client) Push(ctx context.Context, files []PushFile, opts PushOptions) (*PushResult, error) {
	if opts.Mode != nil && *opts.Mode&^0o777 != 0 {
		return nil, fmt.Errorf("client: push: mode %#o: want permission bits 0 to 0777", uint32(*opts.Mode))
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	host := c.target.String()
	res := &PushResult{}
	paths := make([]any, len(files))
	for i, f := range files {
		paths[i] = f.Remote
	}
	check, err := c.RunWith(ctx, checkScript, RunOptions{Args: map[string]any{"paths": paths, "mode": opts.Mode != nil}})
	res.Check = check
	if err != nil || check.Exit != 0 {
		return res, err
	}
	var have [][2]any
	if err := json.Unmarshal(check.Result, &have); err != nil || len(have) != len(files) {
		return res, &ProtocolError{Host: host, Msg: fmt.Sprintf("hash check result %s: want %d entries", check.Result, len(files))}
	}
	type todo struct {
		f         PushFile
		chmodOnly bool // the content is there, the mode differs
	}
	var work []todo
	for i, f := range files {
		sum, _ := have[i][0].(string)
		mode, hasMode := have[i][1].(float64)
		switch {
		case have[i][0] == nil || sum != f.SHA256:
			work = append(work, todo{f: f})
		case opts.Mode != nil && (!hasMode || os.FileMode(mode) != *opts.Mode):
			work = append(work, todo{f: f, chmodOnly: true})
		default:
			res.Unchanged = append(res.Unchanged, f.Remote)
		}
	}
	if len(work) == 0 {
		return res, nil
	}
	sc, err := c.SFTP()
	if err != nil {
		return res, sftpCtxError(ctx, host, err)
	}
	var once sync.Once
	closeSC := func() { once.Do(func() { sc.Close() }) }
	defer closeSC()
	stop := context.AfterFunc(ctx, closeSC) // unblocks a transfer in progress
	defer stop()
	for _, w := range work {
		if w.chmodOnly {
			if err := sc.Chmod(w.f.Remote, *opts.Mode); err != nil {
				return res, sftpCtxError(ctx, host, &PushError{Host: host, Op: "chmod", Path: w.f.Remote, Err: err})
			}
		} else if err := upload(sc, closeSC, host, w.f, opts); err != nil {
			return res, sftpCtxError(ctx, host, err)
		}
		res.Changed = append(res.Changed, w.f.Remote)
	}
	closeSC()
	if opts.Then == "" {
		return res, nil
	}
	res.Then, err = c.RunWith(ctx, opts.Then, RunOptions{Args: opts.ThenArgs})
	return res, err
}

// sftpCtxError is err, or the context's error when it ended (which closed
// the sftp session under the transfer).
func sftpCtxError(ctx context.Context, host string, err error) error {
	if ctx.Err() != nil {
		return ctxError(ctx, host)
	}
	return err
}

// upload writes one file: opened with truncate, so the server starts an
// empty upload that replaces the file atomically when the handle is
// closed; the mode, set on the open handle, is applied once it is in
// place.
func upload(sc *sftp.Client, closeSC func(), host string, f PushFile, opts PushOptions) error {
	src, err := os.OpenFile(f.Local, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("client: push: %w", err)
	}
	defer src.Close()
	if fi, err := src.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("client: push %s: not a regular file", f.Local)
	}
	dst, err := sc.OpenFile(f.Remote, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return &PushError{Host: host, Op: "open", Path: f.Remote, Err: err}
	}
	// The local file is checked against its hash as it is sent: one that
	// changed since it was hashed is not committed.
	h := sha256.New()
	var r io.Reader = io.TeeReader(io.LimitReader(src, f.Size+1), h)
	if opts.Progress != nil {
		r = progressReader{r: r, fn: opts.Progress}
	}
	n, err := io.Copy(dst, r)
	if err == nil && (n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256) {
		err = fmt.Errorf("client: push: %s changed while it was sent", f.Local)
	}
	if err != nil {
		// Closing after a failed write would commit a partial file: the
		// server drops an upload whose session ends with it open, so the
		// session is what is closed.
		closeSC()
		return &PushError{Host: host, Op: "write", Path: f.Remote, Err: err}
	}
	if opts.Mode != nil {
		if err := dst.Chmod(*opts.Mode); err != nil {
			closeSC()
			return &PushError{Host: host, Op: "chmod", Path: f.Remote, Err: err}
		}
	}
	if err := dst.Close(); err != nil {
		return &PushError{Host: host, Op: "close", Path: f.Remote, Err: err}
	}
	return nil
}

type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}
