package workerproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// headerLen is the length of a frame header: payload length and type.
const headerLen = 5

// Frame size limits. A Start message carries the script (capped by the
// server's MaxScript) and the policy files; a Print carries one print call.
const (
	DefaultMaxFrame = 64 << 20
)

// ErrFrameTooLarge is returned by Reader.Next for a frame over its limit.
var ErrFrameTooLarge = errors.New("workerproto: frame too large")

// Writer writes frames. It is safe for concurrent use: each frame is
// written whole, in one Write call.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteRaw writes one frame of type t with payload p.
func (w *Writer) WriteRaw(t Type, p []byte) error {
	if uint64(len(p)) > 1<<32-1 {
		return ErrFrameTooLarge
	}
	buf := make([]byte, headerLen+len(p))
	binary.BigEndian.PutUint32(buf, uint32(len(p)))
	buf[4] = byte(t)
	copy(buf[headerLen:], p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.w.Write(buf); err != nil {
		return fmt.Errorf("workerproto: write %s: %w", t, err)
	}
	return nil
}

// WriteJSON writes one frame of type t holding v as JSON.
func (w *Writer) WriteJSON(t Type, v any) error {
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("workerproto: encode %s: %w", t, err)
	}
	return w.WriteRaw(t, p)
}

// Reader reads frames. It is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	max int
}

// NewReader returns a Reader on r that refuses frames whose payload is
// longer than max bytes (DefaultMaxFrame if max <= 0).
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Buffered returns how many bytes the Reader has read from its source
// and not yet returned in a frame.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// Next reads the next frame. It returns io.EOF at a clean end between
// frames and io.ErrUnexpectedEOF for a truncated one. The payload is valid
// until the next call.
func (r *Reader) Next() (Type, []byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("workerproto: truncated frame header: %w", err)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	t := Type(h[4])
	if t < TypeStart || t > typeLast {
		return 0, nil, fmt.Errorf("workerproto: unknown frame type %d", h[4])
	}
	if uint64(n) > uint64(r.max) {
		return 0, nil, fmt.Errorf("%w: %s frame of %d bytes, limit %d", ErrFrameTooLarge, t, n, r.max)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("workerproto: truncated %s frame: %w", t, err)
	}
	return t, p, nil
}

// Decode decodes a JSON payload into v strictly: unknown fields and data
// after the object are errors.
func Decode(t Type, p []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("workerproto: decode %s: %w", t, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("workerproto: decode %s: data after the object", t)
	}
	return nil
}
