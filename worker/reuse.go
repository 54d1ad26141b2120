package worker

// Reuse of a worker for the next script of the same principal.
//
// Starting a worker process and reaping it cost more CPU than a short
// script does (docs/BENCHMARKS.md), so a worker whose script ended cleanly
// is parked and may run the next script of the same principal under the
// same limits, instead of ending. A worker never runs a script of another
// principal once it has run one: the key it is parked under is the whole
// identity the script ran as (user, role, principals, certificate serial,
// key fingerprint, kind of authentication) and its limits, and only a
// session with exactly that key takes it. So whatever a script could leave
// in its worker is only ever seen by a script that could have read it
// anyway. And a script leaves nothing by design: each one gets a new
// interpreter, globals, host and counters; the worker kills and reaps
// whatever the script's programs left running
// before it reports the script's end (afterScript); and a worker whose
// script ended in any other way than ok, a script or syntax error or a
// denial — a limit, a crash, a kill, a cancel, a broken protocol, a line
// that could not be written, anything on its stderr, a record, byte or
// descriptor left unread — is never reused.

import (
	"encoding/json"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/outcome"
)

// Bounds of reuse.
const (
	// DefaultParked is how many parked workers a pool keeps, over every
	// principal, when Config.Parked is 0.
	DefaultParked = 32
	// parkIdle is how long a worker stays parked before it is ended.
	parkIdle = 30 * time.Second
	// maxRuns is how many scripts one worker runs at most.
	maxRuns = 200
	// parkMaxRSS is the most resident memory a worker may hold to be
	// parked (a script that built big values leaves its heap behind).
	parkMaxRSS = 64 << 20
)

// reuseKey is the key a worker that ran st is parked under: the identity
// the script ran as and the limits applied to the process.
func reuseKey(st *workerproto.Start) string {
	b, err := json.Marshal(struct {
		P any
		L workerproto.Limits
	}{st.Principal, st.Limits})
	if err != nil {
		return "" // never parked
	}
	return string(b)
}

// parking is a pool's parked workers, by reuse key, most recent last. Its
// fields are guarded by the pool's mu.
type parking struct {
	by map[string][]*worker
	n  int
}

// unpark returns a parked worker for key, or nil. p.mu is held.
func (p *Pool) unpark(key string) *worker {
	ws := p.parked.by[key]
	for len(ws) > 0 {
		w := ws[len(ws)-1]
		ws = ws[:len(ws)-1]
		p.parked.n--
		w.parkTimer.Stop()
		if !w.gone() && !w.ring.Pending() {
			p.setParked(key, ws)
			p.parkedChanged()
			return w
		}
		p.wg.Add(1)
		go func() { defer p.wg.Done(); w.discard() }()
	}
	p.setParked(key, ws)
	p.parkedChanged()
	return nil
}

func (p *Pool) setParked(key string, ws []*worker) {
	if len(ws) == 0 {
		delete(p.parked.by, key)
	} else {
		p.parked.by[key] = ws
	}
}

// park keeps w, whose script ended cleanly, for the next script under
// key, or ends it when the pool is closed or full.
func (p *Pool) park(w *worker, key string) {
	w.runs++
	p.mu.Lock()
	if p.closed || key == "" || p.parked.n >= p.parkedMax() || w.runs >= maxRuns {
		p.mu.Unlock()
		w.discard()
		return
	}
	if p.parked.by == nil {
		p.parked.by = map[string][]*worker{}
	}
	p.parked.by[key] = append(p.parked.by[key], w)
	p.parked.n++
	p.parkedChanged()
	w.parkTimer = time.AfterFunc(parkIdle, func() { p.expire(w, key) })
	p.mu.Unlock()
}

func (p *Pool) parkedMax() int {
	if p.cfg.Parked == 0 {
		return DefaultParked
	}
	return max(p.cfg.Parked, 0)
}

// expire ends w if it is still parked under key.
func (p *Pool) expire(w *worker, key string) {
	p.mu.Lock()
	ws := p.parked.by[key]
	i := -1
	for j, x := range ws {
		if x == w {
			i = j
		}
	}
	if i < 0 || p.closed {
		p.mu.Unlock()
		return
	}
	p.setParked(key, append(ws[:i:i], ws[i+1:]...))
	p.parked.n--
	p.parkedChanged()
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	w.discard()
}

// closeParked takes every parked worker out of the pool; p.mu is held.
func (p *Pool) closeParked() []*worker {
	var out []*worker
	for _, ws := range p.parked.by {
		for _, w := range ws {
			w.parkTimer.Stop()
			out = append(out, w)
		}
	}
	p.parked = parking{}
	p.parkedChanged()
	return out
}

// Parked returns how many workers are parked for reuse.
func (p *Pool) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.parked.n
}

// reusable reports whether a worker whose run ended as ev may run another
// script: the script ended on its own with a Result saying ok, a script or
// syntax error or a denial; nothing else happened to it; and it left
// nothing behind that a next run would read (a byte read ahead, a record
// in the ring, a line on stderr) or a heap over parkMaxRSS.
func (p *Pool) reusable(w *worker, ev *workerEvents, rd *workerReader) bool {
	if p.parkedMax() == 0 || ev.result == nil || ev.exited || ev.broken() || ev.killed != nil || ev.cancelled {
		return false
	}
	switch ev.result.Exit {
	case outcome.ExitOK, outcome.ExitScriptError, outcome.ExitSyntaxError, outcome.ExitAccessDenied:
	default:
		return false
	}
	if rd.fr == nil || rd.fr.Buffered() != 0 || w.ring.Pending() || w.stderrHead.len() != 0 || !socketEmpty(w.fds) {
		return false
	}
	rss := w.rss()
	return rss > 0 && rss <= parkMaxRSS
}

// socketEmpty reports whether nothing waits to be read on the worker's
// descriptor socket (a descriptor sent with no Cat message for it).
func socketEmpty(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	empty := false
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		empty = err == unix.EAGAIN
		return true // never wait
	})
	return empty
}

// headBuffer keeps the first max bytes written to it; safe for
// concurrent use.
type headBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.b)
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.b)
}
