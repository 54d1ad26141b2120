package workerproto

// Bulk reads by descriptor (fs.cat): the worker pins and authorizes a file,
// then passes the open descriptor to the server, which streams it into the
// session's output. The bytes never cross the worker's pipe.
//
// Descriptors cannot travel over a pipe, so the server makes a unix
// socket pair (SOCK_SEQPACKET) for each worker and passes one end as
// descriptor FDSocketFD (4); the worker marks it close-on-exec at once, so
// no program a script runs inherits it. For each fs.cat the worker
// sends exactly one descriptor (SCM_RIGHTS, one byte of data) on that
// socket, then a Cat message on its stdout, and waits for the server's
// CatDone message on its stdin. Because the descriptor is sent before the
// message is written, it is already queued when the server reads the
// message: the server takes it without waiting (MSG_DONTWAIT), and a Cat
// with no descriptor queued is a protocol error. The server handles Cat in
// order with Print messages, so output before the cat reaches the client
// before the file's bytes and output after it comes after them.
//
// The server does not believe the worker's numbers: it accepts only a
// regular file opened for reading, sends at most Bytes, never past what is
// left of the script's output cap (more is the output limit, as for a
// print) nor, counting every Cat of the script, past its read cap (more
// is a protocol error: an honest worker's read budget is never larger).

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Message types of a bulk read.
const (
	// TypeCat asks the server to stream a descriptor the worker has just
	// sent on its descriptor socket: worker → server, *Cat, JSON.
	TypeCat Type = 9
	// TypeCatDone says how many bytes the server streamed: server →
	// worker, *CatDone, JSON.
	TypeCatDone Type = 10
)

// FDSocketFD is the descriptor a worker finds its end of the descriptor
// socket at: the second of the command's ExtraFiles.
const FDSocketFD = 4

// Cat is the message that follows a descriptor on the descriptor socket.
type Cat struct {
	// Path is the canonical path the worker authorized, for the client's
	// events.
	Path string `json:"path"`
	// Bytes is the most the server may send, from the file's start.
	Bytes int64 `json:"bytes"`
}

// CatDone answers a Cat once the bytes are sent.
type CatDone struct {
	Bytes int64 `json:"bytes"`
	// Error, when set, says why fewer bytes than asked were sent although
	// the file had them (the client went away, the script's time ran out).
	Error string `json:"error,omitempty"`
}

// NewFDSocket returns a connected socket pair for passing descriptors: the
// server's end and the worker's. Both are close-on-exec; exec.Cmd's
// ExtraFiles hands the worker's end over all the same.
func NewFDSocket() (server, worker *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("workerproto: descriptor socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "keyhole-fds"), os.NewFile(uintptr(fds[1]), "keyhole-fds"), nil
}

// IsFDSocket reports whether fd is a unix SOCK_SEQPACKET socket, as
// NewFDSocket makes: a worker tells its descriptor socket from whatever
// else may hold FDSocketFD.
func IsFDSocket(fd int) bool {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil || typ != unix.SOCK_SEQPACKET {
		return false
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	_, ok := sa.(*unix.SockaddrUnix)
	return ok
}

// SendFD sends the descriptor of f on the descriptor socket sock.
func SendFD(sock, f *os.File) error {
	rights := unix.UnixRights(int(f.Fd()))
	if err := unix.Sendmsg(int(sock.Fd()), []byte{0}, rights, nil, 0); err != nil {
		return fmt.Errorf("workerproto: send descriptor: %w", err)
	}
	return nil
}

// ErrNoFD is RecvFD's error when no descriptor is queued.
var ErrNoFD = errors.New("workerproto: cat message with no descriptor sent before it")

// RecvFD takes the next descriptor queued on the descriptor socket sock,
// without waiting. Exactly one descriptor must come with one byte of
// data; anything else is an error, and every descriptor that did come is
// closed.
func RecvFD(sock *os.File) (*os.File, error) {
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room to see, and close, a few extra
	n, oobn, flags, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if errors.Is(err, unix.EAGAIN) {
		return nil, ErrNoFD
	}
	if err != nil {
		return nil, fmt.Errorf("workerproto: receive descriptor: %w", err)
	}
	var fds []int
	if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for i := range msgs {
			if got, rerr := unix.ParseUnixRights(&msgs[i]); rerr == nil {
				fds = append(fds, got...)
			}
		}
	}
	if n != 1 || len(fds) != 1 || flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("workerproto: descriptor message of %d bytes with %d descriptors, want 1 and 1", n, len(fds))
	}
	return os.NewFile(uintptr(fds[0]), "cat"), nil
}

// CheckCatFile reports whether f is what a Cat may stream: a regular file
// open for reading.
func CheckCatFile(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("workerproto: cat descriptor: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("workerproto: cat descriptor is not a regular file")
	}
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("workerproto: cat descriptor: %w", err)
	}
	if fl&unix.O_PATH != 0 || fl&unix.O_ACCMODE == unix.O_WRONLY {
		return errors.New("workerproto: cat descriptor is not open for reading")
	}
	return nil
}
