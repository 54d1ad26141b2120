package sshserver

import (
	"hash/maphash"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
)

// Bounds of the refusal limiter.
const (
	// refusalWindow is the window over which refusals are counted.
	refusalWindow = 10 * time.Second
	// refusalSame is how many refusals from one source with the same
	// reason are written in full per window: a flood repeats itself.
	refusalSame = 3
	// refusalBurst is how many refusals from one source are written in
	// full per window, whatever their reasons.
	refusalBurst = 100
	// refusalTotal is how many refusals from all sources together are
	// written in full per window.
	refusalTotal = 1000
	// refusalSources is how many sources the limiter tracks at once.
	// Refusals from further sources share one window of their own, so a
	// flood from many addresses cannot grow the limiter.
	refusalSources = 1024
)

// refusals rate-limits the audit lines of refusals made before a
// connection has authenticated (refused keys, the startup caps, the login
// grace time, too many attempts, the connection caps), so that anyone who
// can reach the port cannot fill the audit log. Per source address and
// window, the first lines are written in full (up to refusalSame with one
// reason, refusalBurst in all, and refusalTotal from every source
// together); the rest are counted,
// and one summary line (event auth.refused, reason "N more refusals from S
// in the last 10s") is written when the window ends, or when the limiter
// is closed. Nothing is dropped silently.
//
// Memory is bounded: at most maxSources windows are kept, each for one
// window's length and with at most burst reason hashes; refusals from
// sources beyond that share one overflow window whose summary names
// "other sources". IPv6 sources are counted by /64, the block one host
// is usually given. Safe for concurrent use; mu
// guards every field; the audit sink is called with mu held so that a
// window's summary follows its lines.
type refusals struct {
	sink       audit.Sink
	clock      func() time.Time // times of the summary lines
	window     time.Duration
	same       int
	burst      int
	total      int
	maxSources int
	seed       maphash.Seed

	mu         sync.Mutex
	bySource   map[netip.Addr]*refusalCount
	overflow   *refusalCount // nil until the map is full
	written    int           // lines written in full in the global window
	totalStart time.Time     // start of the global window
	closed     bool
}

// refusalCount is one source's window.
type refusalCount struct {
	source  string // as the summary names it
	addr    string // the summary's source field: "" for the overflow window
	start   time.Time
	written int
	dropped int
	reasons map[uint64]int // lines written per reason hash
	timer   *time.Timer
}

func newRefusals(sink audit.Sink, clock func() time.Time) *refusals {
	return &refusals{sink: sink, clock: clock, window: refusalWindow, same: refusalSame, burst: refusalBurst,
		total: refusalTotal, maxSources: refusalSources, seed: maphash.MakeSeed(),
		bySource: map[netip.Addr]*refusalCount{}}
}

// log writes e, a refusal of a connection from src, unless src has used up
// its lines for this window; then it is counted for the summary.
func (r *refusals) log(src netip.Addr, e audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.sink.Log(e)
		return
	}
	if src.Is6() && !src.Is4In6() {
		src = netip.PrefixFrom(src, 64).Masked().Addr()
	}
	c := r.bySource[src]
	if c == nil {
		if len(r.bySource) < r.maxSources {
			c = r.start(e.Source, func() { r.expire(src) })
			c.addr = e.Source
			r.bySource[src] = c
		} else {
			if r.overflow == nil {
				r.overflow = r.start("other sources", r.expireOverflow)
			}
			c = r.overflow
		}
	}
	if now := time.Now(); now.Sub(r.totalStart) >= r.window {
		r.totalStart, r.written = now, 0
	}
	h := maphash.String(r.seed, e.Reason)
	if c.written < r.burst && c.reasons[h] < r.same && r.written < r.total {
		c.written++
		c.reasons[h]++
		r.written++
		r.sink.Log(e)
		return
	}
	c.dropped++
}

// start opens a window that ends after r.window.
func (r *refusals) start(source string, end func()) *refusalCount {
	return &refusalCount{source: source, start: time.Now(), reasons: map[uint64]int{},
		timer: time.AfterFunc(r.window, end)}
}

func (r *refusals) expire(src netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.bySource[src]; c != nil {
		delete(r.bySource, src)
		r.summarise(c)
	}
}

func (r *refusals) expireOverflow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.overflow; c != nil {
		r.overflow = nil
		r.summarise(c)
	}
}

// summarise writes c's summary line, if it dropped any. mu is held.
func (r *refusals) summarise(c *refusalCount) {
	c.timer.Stop()
	if c.dropped == 0 {
		return
	}
	r.sink.Log(audit.Event{
		Time:   r.clock(),
		Event:  audit.AuthRefused,
		Source: c.addr,
		Reason: strconv.Itoa(c.dropped) + " more refusals from " + c.source + " in the last " +
			roundWindow(time.Since(c.start), r.window),
	})
}

// roundWindow names the time a window covered: its length, or less when
// it was cut short.
func roundWindow(d, window time.Duration) string {
	if d > window {
		d = window
	}
	return d.Round(time.Second).String()
}

// close writes the summaries of every open window; later refusals are
// written in full. The server calls it once it has stopped accepting.
func (r *refusals) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for src, c := range r.bySource {
		delete(r.bySource, src)
		r.summarise(c)
	}
	if r.overflow != nil {
		r.summarise(r.overflow)
		r.overflow = nil
	}
}

// tracked returns how many sources have an open window, for tests.
func (r *refusals) tracked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bySource)
}
