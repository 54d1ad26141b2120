package workerproto

// The decision ring: a region of memory shared by the server and one
// worker, where the worker puts each decision record without a system
// call and the server takes them out. The region outlives the worker, so
// the server reads every record a worker put there even when it was
// killed with SIGKILL a moment later.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring layout: a 64-byte header, then the data area. The header holds two
// byte counts that only grow: head, everything the producer has put, and
// tail, everything the consumer has taken. A record is a 4-byte
// little-endian length and that many bytes, wrapping around the end of the
// data area.
const (
	ringHeader = 64
	offHead    = 0
	offTail    = 8
	// MaxRecord is the largest record a ring carries.
	MaxRecord = 64 << 10
	// DefaultRingSize is the size of the data area NewRingFile makes when
	// asked for zero bytes.
	DefaultRingSize = 1 << 20
	// RingFD is the descriptor a worker finds its ring at: the server
	// passes the ring file as the first of the command's ExtraFiles.
	RingFD = 3
	// ringSeals are the seals of a ring file: its size is fixed, so no
	// holder of a descriptor can shrink it under another's mapping (an
	// access past the end of a shared file is SIGBUS in every process that
	// maps it).
	ringSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
)

// ErrRingFull is returned by Put when the record does not fit until the
// consumer has taken what is in the ring.
var ErrRingFull = errors.New("workerproto: ring full")

// Ring is one end of a shared ring. The producer (the worker) calls Put,
// the consumer (the server) calls Take; each end is used by one goroutine
// at a time. The consumer does not trust the producer: it copies each
// record out before it looks at it, keeps its own count of what it has
// taken, and reports a header or record the producer could not have
// written honestly as an error.
type Ring struct {
	mem  []byte // the mapping: header and data
	data []byte
	size uint64
	tail uint64 // the consumer's own count (consumer end only)
}

// NewRingFile returns a new anonymous shared-memory file for a ring whose
// data area is size bytes (DefaultRingSize if 0), a power of two of at
// least 4 KiB. The server keeps it and gives the worker a descriptor. The
// file is sealed at its size: neither end can truncate or grow it.
func NewRingFile(size int) (*os.File, error) {
	if size == 0 {
		size = DefaultRingSize
	}
	if size < 4096 || size&(size-1) != 0 || size > 1<<30 {
		return nil, fmt.Errorf("workerproto: ring size %d is not a power of two between 4 KiB and 1 GiB", size)
	}
	fd, err := unix.MemfdCreate("keyhole-decisions", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("workerproto: ring: %w", err)
	}
	f := os.NewFile(uintptr(fd), "keyhole-decisions")
	if err := f.Truncate(int64(ringHeader + size)); err != nil {
		f.Close()
		return nil, fmt.Errorf("workerproto: ring: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, ringSeals); err != nil {
		f.Close()
		return nil, fmt.Errorf("workerproto: seal ring: %w", err)
	}
	return f, nil
}

// IsRingFile reports whether the descriptor fd is a ring file: a
// shared-memory file sealed as NewRingFile seals it. A worker uses it to
// tell its ring at RingFD from whatever else may hold that number.
func IsRingFile(fd int) bool {
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	return err == nil && seals&ringSeals == ringSeals
}

// MapRing maps the ring file f. The mapping stays valid after f is closed;
// Unmap releases it.
func MapRing(f *os.File) (*Ring, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("workerproto: ring: %w", err)
	}
	size := fi.Size() - ringHeader
	if size < 4096 || size&(size-1) != 0 || size > 1<<30 {
		return nil, fmt.Errorf("workerproto: ring file of %d bytes has no valid size", fi.Size())
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("workerproto: map ring: %w", err)
	}
	return &Ring{mem: mem, data: mem[ringHeader:], size: uint64(size)}, nil
}

// Unmap releases the mapping; the Ring must not be used afterwards.
func (r *Ring) Unmap() error {
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem, r.data = nil, nil
	return err
}

func (r *Ring) word(off int) *uint64 { return (*uint64)(unsafe.Pointer(&r.mem[off])) }

// Put appends rec to the ring (producer end). It returns ErrRingFull when
// rec does not fit until the consumer takes what is there, and an error
// for a record over MaxRecord. A record Put returned for is visible to the
// consumer: the head count is published after the bytes.
func (r *Ring) Put(rec []byte) error {
	if len(rec) > MaxRecord {
		return fmt.Errorf("workerproto: ring record of %d bytes, limit %d", len(rec), MaxRecord)
	}
	head := atomic.LoadUint64(r.word(offHead))
	tail := atomic.LoadUint64(r.word(offTail))
	need := uint64(4 + len(rec))
	if head-tail > r.size || r.size-(head-tail) < need {
		return ErrRingFull
	}
	var l [4]byte
	binary.LittleEndian.PutUint32(l[:], uint32(len(rec)))
	r.copyIn(head, l[:])
	r.copyIn(head+4, rec)
	atomic.StoreUint64(r.word(offHead), head+need)
	return nil
}

func (r *Ring) copyIn(at uint64, p []byte) {
	i := at & (r.size - 1)
	n := copy(r.data[i:], p)
	copy(r.data, p[n:])
}

func (r *Ring) copyOut(at uint64, p []byte) {
	i := at & (r.size - 1)
	n := copy(p, r.data[i:])
	copy(p[n:], r.data)
}

// Take calls fn with a copy of each record put since the last Take (valid
// only during the call), in
// order (consumer end), and then frees their space. It stops at the first
// error fn returns, freeing only the records before it. A head that went
// backwards or past a full ring, or a record whose length is over
// MaxRecord or past the head, is an error: the producer broke the
// protocol, and nothing after that point is believed.
func (r *Ring) Take(fn func(rec []byte) error) error {
	head := atomic.LoadUint64(r.word(offHead))
	if head < r.tail || head-r.tail > r.size {
		return fmt.Errorf("workerproto: ring head %d is impossible after %d taken", head, r.tail)
	}
	var buf []byte
	for r.tail < head {
		if head-r.tail < 4 {
			return errors.New("workerproto: ring record length cut off")
		}
		var l [4]byte
		r.copyOut(r.tail, l[:])
		n := uint64(binary.LittleEndian.Uint32(l[:]))
		if n > MaxRecord || n > head-r.tail-4 {
			return fmt.Errorf("workerproto: ring record of %d bytes with %d left", n, head-r.tail-4)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		rec := buf[:n]
		r.copyOut(r.tail+4, rec)
		if err := fn(rec); err != nil {
			return err
		}
		r.tail += 4 + n
		atomic.StoreUint64(r.word(offTail), r.tail)
	}
	return nil
}

// Pending reports whether the producer has put records the consumer has
// not taken (consumer end).
func (r *Ring) Pending() bool { return atomic.LoadUint64(r.word(offHead)) != r.tail }
