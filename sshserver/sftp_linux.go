//go:build linux

package sshserver

// Subsystem sftp (DESIGN.md, "Wire protocols"; docs/files.md): pkg/sftp's
// request server decodes the packets, and every request is one hostops
// operation of the session's Host, with context.transport "sftp": pinned,
// authorized and audited exactly as a script's. The server runs in this
// process, not in a worker; docs/files.md says why and what bounds it.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
	"github.com/keyhole-dev/keyhole/outcome"
	"github.com/keyhole-dev/keyhole/starlarkrt"
)

// MaxSftpHandles caps the files and directories one sftp session holds
// open at once; the request past it ends the session.
const MaxSftpHandles = 256

// sftpTxPacket is the most file data one read answer carries (the client
// asks for less; OpenSSH asks for 32 KiB, or what -B says).
const sftpTxPacket = 255 << 10

// sftpCoalesce is the most reply bytes that wait to be sent (coalescer).
const sftpCoalesce = 1 << 20

// sftpSession is the state of one sftp subsystem.
type sftpSession struct {
	ss *session
	h  *hostops.Host

	handles atomic.Int64

	mu      sync.Mutex
	uploads map[string]*sftpUpload // open uploads by canonical path
	stopped string                 // why the session was ended by the server, "" if it was not
	exit    int
	stopFn  func()
}

// runSftp serves subsystem sftp on the session's channel until the
// client closes it, a limit ends it, or its packet stream breaks the
// protocol. It returns the exit status sent to the client: 0 when the
// client ended the session, 124 past a limit, 125 for anything else.
func (ss *session) runSftp(ctx context.Context) int {
	ss.mu.Lock()
	ss.base.Transport = "sftp"
	event := ss.base
	ss.mu.Unlock()
	lim := ss.s.cfg.Limits
	wall := cmp.Or(lim.MaxWall, starlarkrt.DefaultMaxWall)
	ctx, cancel := context.WithTimeout(ctx, wall)
	defer cancel()
	counters := &hostops.Counters{
		MaxRead:       lim.MaxRead,
		MaxWrite:      lim.MaxWrite,
		MaxOperations: cmp.Or(lim.MaxOperations, DefaultMaxOperations),
	}
	sf := &sftpSession{
		ss: ss,
		h: &hostops.Host{
			Policy:    ss.policy,
			Principal: *ss.id,
			Context: authz.Context{
				SourceIP:  addrOf(ss.conn.RemoteAddr()),
				SessionID: ss.sid,
				Transport: "sftp",
			},
			Audit:    ss.s.cfg.Audit,
			Event:    event,
			Clock:    ss.s.cfg.Clock,
			Counters: counters,
		},
		uploads: map[string]*sftpUpload{},
	}
	// pkg/sftp closes what it serves when it stops; the session must stay
	// open for its exit status, so it gets a pipe the channel is copied
	// into.
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, ss.ch)
		pw.CloseWithError(err)
	}()
	out := newCoalescer(ss.ch, sftpCoalesce)
	srv := sftp.NewRequestServer(&sftpStream{Reader: pr, Writer: out, close: func() { pr.Close() }}, sftp.Handlers{FileGet: sf, FilePut: sf, FileCmd: sf, FileList: sf},
		sftp.WithRSMaxTxPacket(sftpTxPacket))
	sf.stopFn = func() { _ = srv.Close() }
	go func() {
		<-ctx.Done()
		if ctx.Err() == context.DeadlineExceeded {
			sf.stop(outcome.ExitLimitExceeded, fmt.Sprintf("the session's wall-time limit of %s is exceeded", wall))
		} else {
			_ = srv.Close()
		}
	}()
	err := serveRecovered(srv)
	cancel()
	out.Close(tellWait) // every reply is sent before the exit status
	sf.mu.Lock()
	why, exit := sf.stopped, sf.exit
	sf.mu.Unlock()
	switch {
	case why != "":
	case err == nil || errors.Is(err, io.EOF):
		why = "client closed the session"
	default:
		// A malformed packet stream: pkg/sftp refuses it and stops.
		why, exit = "sftp protocol error: "+err.Error(), outcome.ExitInternal
		ss.s.cfg.Log.WithError(err).WithField("session", ss.sid).Warn("sftp session ended")
	}
	reason := fmt.Sprintf("%s; read %d bytes, wrote %d bytes", why, counters.Read(), counters.Written())
	ss.release()
	ss.ended = true
	_ = ss.log(audit.Event{Event: audit.SessionEnd, Transport: "sftp", Reason: reason, Exit: audit.Int(exit)})
	if exit != 0 {
		_, _ = io.WriteString(ss.ch.Stderr(), "keyhole: "+why+"\n")
	}
	_, _ = ss.ch.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{uint32(exit)}))
	_ = ss.ch.CloseWrite()
	return exit
}

// sftpStream is what the request server reads and writes; closing it
// ends the server's reads, not the channel.
type sftpStream struct {
	io.Reader
	io.Writer
	close func()
}

func (s *sftpStream) Close() error { s.close(); return nil }

// serveRecovered runs srv until it ends. A panic while decoding the
// packet stream ends this session only, as a protocol error.
func serveRecovered(srv *sftp.RequestServer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			_ = srv.Close()
			err = fmt.Errorf("sftp: panic serving the session: %v", r)
		}
	}()
	return srv.Serve()
}

// stop ends the session with exit status exit for why; the first reason
// given is the one recorded.
func (sf *sftpSession) stop(exit int, why string) {
	sf.mu.Lock()
	if sf.stopped == "" {
		sf.stopped, sf.exit = why, exit
	}
	sf.mu.Unlock()
	sf.stopFn()
}

// guard runs f and turns a panic in it into the end of the session
// (never of the server) and an error for the request.
func (sf *sftpSession) guard(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			sf.ss.s.cfg.Log.WithField("session", sf.ss.sid).Errorf("sftp: panic in %s: %v", what, r)
			sf.stop(outcome.ExitInternal, "sftp: internal error in "+what)
			err = sftp.ErrSSHFxFailure
		}
	}()
	return sf.reply(f())
}

// reply turns a hostops error into the status the client gets; a limit
// exceeded, or an audit line that could not be written, also ends the
// session, as it ends a script.
func (sf *sftpSession) reply(err error) error {
	if err == nil {
		return nil
	}
	var e *outcome.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Kind {
	case outcome.KindAccessDenied:
		return &sftpError{msg: e.Message, code: sftp.ErrSSHFxPermissionDenied}
	case outcome.KindNotFound:
		return &sftpError{msg: e.Message, code: sftp.ErrSSHFxNoSuchFile}
	case outcome.KindLimitExceeded:
		sf.stop(outcome.ExitLimitExceeded, e.Kind+": "+e.Message)
	case outcome.KindInternal:
		sf.stop(outcome.ExitInternal, e.Kind+": "+e.Message)
	}
	return &sftpError{msg: e.Kind + ": " + e.Message, code: sftp.ErrSSHFxFailure}
}

// sftpError is a status with keyhole's message and the sftp code that
// fits it.
type sftpError struct {
	msg  string
	code error
}

func (e *sftpError) Error() string { return e.msg }
func (e *sftpError) Unwrap() error { return e.code }

// refuse records a request that keyhole never performs (creating links,
// changing owners, in-place changes) and returns its status.
func (sf *sftpSession) refuse(request, reason string) error {
	if err := sf.ss.log(audit.Event{Event: audit.RequestRefused, Transport: "sftp", Request: "sftp " + request, Reason: reason}); err != nil {
		sf.stop(outcome.ExitInternal, "INTERNAL: audit log unwritable")
	}
	return &sftpError{msg: reason, code: sftp.ErrSSHFxOpUnsupported}
}

// takeHandle counts one more open handle; past MaxSftpHandles it ends the
// session.
func (sf *sftpSession) takeHandle() error {
	if sf.handles.Add(1) > MaxSftpHandles {
		sf.handles.Add(-1)
		sf.stop(outcome.ExitLimitExceeded, fmt.Sprintf("LIMIT_EXCEEDED: more than %d open sftp handles", MaxSftpHandles))
		return sftp.ErrSSHFxFailure
	}
	return nil
}

func (sf *sftpSession) dropHandle() { sf.handles.Add(-1) }

// Fileread opens a file for reading: action "read".
func (sf *sftpSession) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	var rd io.ReaderAt
	err := sf.guard("open", func() error {
		if err := sf.takeHandle(); err != nil {
			return err
		}
		st, err := sf.h.StreamRead(r.Filepath)
		if err != nil {
			sf.dropHandle()
			return err
		}
		rd = &sftpReader{ReadStream: st, sf: sf}
		return nil
	})
	return rd, err
}

// sftpReader is an open read handle.
type sftpReader struct {
	*hostops.ReadStream
	sf   *sftpSession
	once sync.Once
}

func (r *sftpReader) ReadAt(p []byte, off int64) (n int, err error) {
	err = r.sf.guard("read", func() error {
		var rerr error
		n, rerr = r.ReadStream.ReadAt(p, off)
		if rerr == io.EOF {
			return nil
		}
		return rerr
	})
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

func (r *sftpReader) Close() error {
	r.once.Do(r.sf.dropHandle)
	return r.ReadStream.Close()
}

// Filewrite opens a file for writing: action "write" on an existing file,
// "create" on a new one. The bytes go to a new file that replaces the old
// one atomically when the handle is closed; a session that ends first
// leaves the old file and nothing else.
func (sf *sftpSession) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	var wr io.WriterAt
	err := sf.guard("open", func() error {
		fl := r.Pflags()
		if fl.Append {
			return sf.refuse("open", "open for append refused: an upload replaces the whole file")
		}
		if err := sf.takeHandle(); err != nil {
			return err
		}
		flags := hostops.UploadFlags{Exclusive: fl.Excl, Truncate: fl.Trunc}
		if r.AttrFlags().Permissions {
			flags.CreateMode = int64(r.Attributes().FileMode().Perm())
		}
		up, err := sf.h.StartUpload(r.Filepath, hostops.KeepMode, flags)
		if err != nil {
			sf.dropHandle()
			return err
		}
		u := &sftpUpload{Upload: up, sf: sf, path: r.Filepath}
		sf.mu.Lock()
		sf.uploads[r.Filepath] = u
		sf.mu.Unlock()
		wr = u
		return nil
	})
	return wr, err
}

// sftpUpload is an open write handle.
type sftpUpload struct {
	*hostops.Upload
	sf   *sftpSession
	path string // as the client named it

	mu     sync.Mutex
	failed bool
	closed bool
	// attrs set on the open handle (fsetstat) while it was written, to
	// apply once the file is in place.
	mode  *int64
	times *[2]time.Time
}

func (u *sftpUpload) WriteAt(p []byte, off int64) (n int, err error) {
	err = u.sf.guard("write", func() error {
		var werr error
		n, werr = u.Upload.WriteAt(p, off)
		return werr
	})
	return n, err
}

// TransferError is called when the session ends with the handle open:
// the upload is dropped, never committed.
func (u *sftpUpload) TransferError(error) {
	u.mu.Lock()
	u.failed = true
	u.mu.Unlock()
}

// Close commits the upload (or drops it after a transfer error), then
// applies the attributes set on the handle meanwhile, each its own
// operation.
func (u *sftpUpload) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	failed, mode, times := u.failed, u.mode, u.times
	u.mu.Unlock()
	u.sf.mu.Lock()
	if u.sf.uploads[u.path] == u {
		delete(u.sf.uploads, u.path)
	}
	u.sf.mu.Unlock()
	defer u.sf.dropHandle()
	if failed {
		u.Upload.Abort()
		return sftp.ErrSSHFxConnectionLost
	}
	return u.sf.guard("close", func() error {
		if err := u.Upload.Commit(); err != nil {
			return err
		}
		if mode != nil {
			if err := u.sf.h.Chmod(u.path, *mode); err != nil {
				return err
			}
		}
		if times != nil {
			return u.sf.h.SetTimes(u.path, times[0], times[1])
		}
		return nil
	})
}

// Filecmd performs setstat, rename, remove, rmdir and mkdir; it refuses
// links.
func (sf *sftpSession) Filecmd(r *sftp.Request) error {
	return sf.guard(strings.ToLower(r.Method), func() error {
		switch r.Method {
		case "Setstat":
			return sf.setstat(r)
		case "Rename":
			return sf.h.Rename(r.Filepath, r.Target)
		case "Rmdir", "Remove":
			return sf.h.Remove(r.Filepath)
		case "Mkdir":
			return sf.h.Mkdir(r.Filepath, false)
		case "Symlink", "Link":
			return sf.refuse(strings.ToLower(r.Method), strings.ToLower(r.Method)+" "+r.Target+" -> "+r.Filepath+" refused: keyhole does not create links")
		}
		return sf.refuse(strings.ToLower(r.Method), "request not supported")
	})
}

// PosixRename is rename: the destination is replaced if it exists.
func (sf *sftpSession) PosixRename(r *sftp.Request) error {
	return sf.guard("rename", func() error { return sf.h.Rename(r.Filepath, r.Target) })
}

// setstat: the mode is chmod, the times are a write, the owner and the
// size are refused. An upload still open at the path gets the mode and
// times once it is in place.
func (sf *sftpSession) setstat(r *sftp.Request) error {
	fl := r.AttrFlags()
	a := r.Attributes()
	if fl.UidGid {
		return sf.refuse("setstat", "setstat of the owner of "+r.Filepath+" refused: keyhole does not change owners")
	}
	var mode *int64
	if fl.Permissions {
		m := int64(a.Mode & 0o7777)
		mode = &m
	}
	var times *[2]time.Time
	if fl.Acmodtime {
		times = &[2]time.Time{time.Unix(int64(a.Atime), 0), time.Unix(int64(a.Mtime), 0)}
	}
	sf.mu.Lock()
	u := sf.uploads[r.Filepath]
	sf.mu.Unlock()
	if u != nil {
		u.mu.Lock()
		if !u.closed {
			if fl.Size {
				// The size of an upload in progress (scp sets it once it
				// has written the file).
				if err := u.Upload.Truncate(int64(a.Size)); err != nil {
					u.mu.Unlock()
					return err
				}
			}
			if mode != nil {
				u.mode = mode
			}
			if times != nil {
				u.times = times
			}
			u.mu.Unlock()
			return nil
		}
		u.mu.Unlock()
	}
	if fl.Size {
		return sf.refuse("setstat", "setstat of the size of "+r.Filepath+" refused: keyhole changes no file in place; upload it whole")
	}
	if mode != nil {
		if err := sf.h.Chmod(r.Filepath, *mode); err != nil {
			return err
		}
	}
	if times != nil {
		return sf.h.SetTimes(r.Filepath, times[0], times[1])
	}
	return nil
}

// StatVFS is a stat of the path, then the statistics of its file system.
func (sf *sftpSession) StatVFS(r *sftp.Request) (*sftp.StatVFS, error) {
	var out *sftp.StatVFS
	err := sf.guard("statvfs", func() error {
		d, err := sf.h.Disk(r.Filepath)
		if err != nil {
			return err
		}
		const unit = 4096
		out = &sftp.StatVFS{
			Bsize: unit, Frsize: unit,
			Blocks: uint64(d.Total) / unit, Bfree: uint64(d.Free) / unit, Bavail: uint64(d.Available) / unit,
			Files: uint64(d.Inodes), Ffree: uint64(d.InodesFree), Favail: uint64(d.InodesFree),
			Namemax: 255,
		}
		return nil
	})
	return out, err
}

// Filelist lists a directory (opendir: action "list", entries the
// session may not stat left out) or stats a path (action "stat").
func (sf *sftpSession) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	var la sftp.ListerAt
	err := sf.guard(strings.ToLower(r.Method), func() error {
		switch r.Method {
		case "List":
			if err := sf.takeHandle(); err != nil {
				return err
			}
			vs, err := sf.h.ListVisible(r.Filepath)
			if err != nil {
				sf.dropHandle()
				return err
			}
			infos := make([]os.FileInfo, len(vs))
			for i, v := range vs {
				infos[i] = fileInfo{name: v.Name, info: v.Info}
			}
			la = &dirLister{infos: infos, sf: sf}
			return nil
		case "Stat", "Lstat":
			info, err := sf.h.Stat(r.Filepath)
			if err != nil {
				return err
			}
			la = listerAt{fileInfo{name: path.Base(r.Filepath), info: info}}
			return nil
		}
		return sf.refuse(strings.ToLower(r.Method), "request not supported")
	})
	return la, err
}

// Lstat is stat: symlinks are followed, as every operation follows them.
func (sf *sftpSession) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	r.Method = "Stat"
	return sf.Filelist(r)
}

// RealPath is a stat of the path; it answers the canonical path of what
// the path names, or, for a path that names nothing where the session may
// stat, the path cleaned.
func (sf *sftpSession) RealPath(p string) (string, error) {
	clean := path.Clean("/" + p)
	var out string
	err := sf.guard("realpath", func() error {
		info, err := sf.h.Stat(clean)
		if hostops.IsKind(err, outcome.KindNotFound) {
			out = clean
			return nil
		}
		if err != nil {
			return err
		}
		out = info.Path
		return nil
	})
	return out, err
}

// Readlink is a stat of the path: it answers the canonical path of the
// object a symlink leads to.
func (sf *sftpSession) Readlink(p string) (string, error) {
	var out string
	err := sf.guard("readlink", func() error {
		info, err := sf.h.Stat(p)
		if err != nil {
			return err
		}
		out = info.Path
		return nil
	})
	return out, err
}

// dirLister is an open directory handle.
type dirLister struct {
	infos []os.FileInfo
	sf    *sftpSession
	once  sync.Once
}

func (d *dirLister) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(d.infos)) {
		return 0, io.EOF
	}
	n := copy(out, d.infos[off:])
	if off+int64(n) >= int64(len(d.infos)) {
		return n, io.EOF
	}
	return n, nil
}

func (d *dirLister) Close() error {
	d.once.Do(d.sf.dropHandle)
	return nil
}

// listerAt answers a stat.
type listerAt []os.FileInfo

func (l listerAt) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	return n, io.EOF
}

// fileInfo is an os.FileInfo of a hostops.Info.
type fileInfo struct {
	name string
	info hostops.Info
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.info.Size }
func (f fileInfo) ModTime() time.Time { return f.info.ModTime }
func (f fileInfo) IsDir() bool        { return f.info.Type == "dir" }
func (f fileInfo) Sys() any           { return nil }
func (f fileInfo) Uid() uint32        { return uint32(f.info.UID) }
func (f fileInfo) Gid() uint32        { return uint32(f.info.GID) }
func (f fileInfo) Mode() fs.FileMode {
	m := f.info.Mode
	switch f.info.Type {
	case "dir":
		m |= fs.ModeDir
	case "symlink":
		m |= fs.ModeSymlink
	case "fifo":
		m |= fs.ModeNamedPipe
	case "socket":
		m |= fs.ModeSocket
	case "device":
		m |= fs.ModeDevice
	}
	return m
}
