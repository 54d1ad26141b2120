package sshserver

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

// DefaultWorkerPool is how many started, idle workers the server keeps
// when Config.WorkerPool is 0: a session then skips the worker's exec and
// runtime start-up (see BenchmarkSessionStart).
const DefaultWorkerPool = 2

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

// workerPool keeps started workers waiting for their Start message. Idle
// workers hold nothing of any session: they were started with the same
// hygiene, an empty environment and no descriptors but their pipes, and
// were sent only the policy set of record at the time (a Preload message),
// which they loaded and validated while idle. The pool is filled after the
// first session asks for a worker, so a server that runs no scripts starts
// none. Its fields are guarded by mu.
type workerPool struct {
	s    *Server
	size int

	mu      sync.Mutex
	idle    []*worker
	filling int
	closed  bool
	wg      sync.WaitGroup // refill goroutines
}

// get returns an idle worker, preferring one that preloaded the policy
// version a session runs with, or starts one. The pool is topped up when
// the session's script ends (done) or refillDelay later, whichever comes
// first; the caller must call done once the worker has ended.
func (p *workerPool) get(version string) (w *worker, done func(), err error) {
	p.mu.Lock()
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
	w, err = p.s.startWorker()
	return w, done, err
}

// refill ends the idle workers that preloaded a policy set other than the
// current one (a reload happened) and starts workers in the background
// until size are idle or starting.
func (p *workerPool) refill() {
	var current string
	if ps := p.s.cfg.Policy.Current(); ps != nil {
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
	}
	for !p.closed && len(p.idle)+p.filling < p.size {
		p.filling++
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			w, err := p.s.startWorker()
			if err == nil {
				if err = p.s.preload(w); err != nil {
					w.discard()
				}
			}
			p.mu.Lock()
			p.filling--
			if err == nil && !p.closed {
				p.idle = append(p.idle, w)
				w = nil
			}
			p.mu.Unlock()
			if err != nil {
				p.s.cfg.Log.WithError(err).Error("worker pool: worker did not start")
			}
			if err == nil && w != nil {
				w.discard()
			}
		}()
	}
}

// close stops refilling and ends every idle worker.
func (p *workerPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	p.wg.Wait()
	for _, w := range idle {
		w.discard()
	}
}

// preload sends an idle worker the policy set of record, which it loads
// and validates while it waits, and records its version. A server with no
// policy loaded sends nothing.
func (s *Server) preload(w *worker) error {
	ps := s.cfg.Policy.Current()
	if ps == nil {
		return nil
	}
	msg := &workerproto.Preload{Policies: ps.Files(), PolicyVersion: ps.Version()}
	if err := w.stdin.SetWriteDeadline(time.Now().Add(preloadTimeout)); err != nil {
		return fmt.Errorf("sshserver: preload worker: %w", err)
	}
	if err := workerproto.NewWriter(w.stdin).WriteJSON(workerproto.TypePreload, msg); err != nil {
		return fmt.Errorf("sshserver: preload worker: %w", err)
	}
	if err := w.stdin.SetWriteDeadline(time.Time{}); err != nil {
		return fmt.Errorf("sshserver: preload worker: %w", err)
	}
	w.policyVersion = msg.PolicyVersion
	return nil
}

// discard ends a worker that never got a script.
func (w *worker) discard() {
	w.kill()
	_ = w.cmd.Wait()
	_ = w.stdin.Close()
	_ = w.stdout.Close()
	_ = w.stderr.Close()
	_ = w.ring.Unmap()
}
