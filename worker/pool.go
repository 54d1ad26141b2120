package worker

import (
	"fmt"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

// Pool timing.
const (
	// refillDelay is how long after a session takes an idle worker the
	// pool starts its replacement, unless the session's script ends
	// first. Starting a worker costs a few milliseconds of CPU; doing it
	// while the session's own worker runs would slow that session on a
	// small machine, so the pool waits for the script to end.
	refillDelay = 100 * time.Millisecond
	// preloadTimeout bounds the write of a Preload message to a worker
	// that does not read it.
	preloadTimeout = 10 * time.Second
)

// Config is what a Pool needs.
type Config struct {
	// Command makes the command of one worker process (see Command); the
	// pool adds the process hygiene. Nil: no worker starts, and every Run
	// ends INTERNAL.
	Command func() *exec.Cmd
	// Size is how many started, idle workers the pool keeps; 0 none.
	Size int
	// Policy returns the policy set of record, which idle workers preload;
	// nil means none is loaded (nothing is preloaded).
	Policy func() *authz.PolicySet
	// Audit gets every decision line.
	Audit audit.Sink
	// Clock stamps decision lines.
	Clock func() time.Time
	// Log is the server log.
	Log logrus.FieldLogger
	// Parked is how many workers whose script ended cleanly the pool
	// keeps for the next script of the same principal (reuse.go): 0
	// means DefaultParked, negative none (every worker runs one script).
	Parked int
	// Observer, if set, is told of worker starts, the idle workers and
	// every decision line (observe.go); nil means none.
	Observer Observer
}

// Pool keeps started workers waiting for their Start message. Idle
// workers hold nothing of any session: they were started with the same
// hygiene, an empty environment and no descriptors but their pipes, and
// were sent only the policy set of record at the time (a Preload message),
// which they loaded and validated while idle. The pool is filled after the
// first session asks for a worker, so a server that runs no scripts starts
// none. Its fields are guarded by mu.
type Pool struct {
	cfg Config

	mu      sync.Mutex
	idle    []*worker
	parked  parking
	filling int
	closed  bool
	wg      sync.WaitGroup // refill, expire and discard goroutines
}

// NewPool returns a pool that starts workers with cfg. Every field of cfg
// but Command is required.
func NewPool(cfg Config) *Pool { return &Pool{cfg: cfg} }

// get returns the worker parked under key (reuse.go), or else an idle
// worker, preferring one that preloaded the policy version a session runs
// with, or starts one. When it takes an idle worker, the pool is topped up
// when the session's script ends (done) or refillDelay later, whichever
// comes first; the caller must call done once the worker has ended.
func (p *Pool) get(version, key string) (w *worker, done func(), err error) {
	p.mu.Lock()
	if w = p.unpark(key); w != nil {
		p.mu.Unlock()
		// The idle workers are not touched, but a reload may have made
		// them stale: refill replaces those.
		return w, p.refill, nil
	}
	if n := len(p.idle); n > 0 {
		i := n - 1
		for j := n - 1; j >= 0; j-- {
			if p.idle[j].policyVersion == version {
				i = j
				break
			}
		}
		w = p.idle[i]
		p.idle = append(p.idle[:i], p.idle[i+1:]...)
		p.idleChanged()
	}
	p.mu.Unlock()
	t := time.AfterFunc(refillDelay, p.refill)
	done = func() {
		t.Stop()
		p.refill()
	}
	if w != nil {
		return w, done, nil
	}
	w, err = p.startObserved()
	return w, done, err
}

// refill ends the idle workers that preloaded a policy set other than the
// current one (a reload happened) and starts workers in the background
// until size are idle or starting.
func (p *Pool) refill() {
	var current string
	if ps := p.cfg.Policy(); ps != nil {
		current = ps.Version()
	}
	var stale []*worker
	defer func() {
		for _, w := range stale {
			w.discard()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if current != "" {
		p.idle = slices.DeleteFunc(p.idle, func(w *worker) bool {
			if w.policyVersion != current {
				stale = append(stale, w)
				return true
			}
			return false
		})
		p.idleChanged()
	}
	for !p.closed && len(p.idle)+p.filling < p.cfg.Size {
		p.filling++
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			w, err := p.startObserved()
			if err == nil {
				if err = p.preload(w); err != nil {
					w.discard()
				}
			}
			p.mu.Lock()
			p.filling--
			if err == nil && !p.closed {
				p.idle = append(p.idle, w)
				p.idleChanged()
				w = nil
			}
			p.mu.Unlock()
			if err != nil {
				p.cfg.Log.WithError(err).Error("worker pool: worker did not start")
			}
			if err == nil && w != nil {
				w.discard()
			}
		}()
	}
}

// Close stops refilling and ends every idle and parked worker. Runs under
// way are not affected (their workers end with them).
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	idle := append(p.idle, p.closeParked()...)
	p.idle = nil
	p.idleChanged()
	p.mu.Unlock()
	p.wg.Wait()
	for _, w := range idle {
		w.discard()
	}
}

// preload sends an idle worker the policy set of record, which it loads
// and validates while it waits, and records its version. A server with no
// policy loaded sends nothing.
func (p *Pool) preload(w *worker) error {
	ps := p.cfg.Policy()
	if ps == nil {
		return nil
	}
	msg := &workerproto.Preload{Policies: ps.Files(), PolicyVersion: ps.Version()}
	if err := w.stdin.SetWriteDeadline(time.Now().Add(preloadTimeout)); err != nil {
		return fmt.Errorf("worker: preload: %w", err)
	}
	if err := workerproto.NewWriter(w.stdin).WriteJSON(workerproto.TypePreload, msg); err != nil {
		return fmt.Errorf("worker: preload: %w", err)
	}
	if err := w.stdin.SetWriteDeadline(time.Time{}); err != nil {
		return fmt.Errorf("worker: preload: %w", err)
	}
	w.policyVersion = msg.PolicyVersion
	return nil
}

// discard ends a worker that is not running a script.
func (w *worker) discard() {
	w.kill()
	<-w.waitDone
	_ = w.stdin.Close()
	_ = w.stdout.Close()
	_ = w.stderr.Close()
	_ = w.ring.Unmap()
	_ = w.fds.Close()
}

// IdleVersions returns the policy version each idle worker preloaded ("" for
// none).
func (p *Pool) IdleVersions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.idle))
	for i, w := range p.idle {
		out[i] = w.policyVersion
	}
	return out
}
