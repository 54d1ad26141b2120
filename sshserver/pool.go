package sshserver

import (
	"sync"
)

// DefaultWorkerPool is how many started, idle workers the server keeps
// when Config.WorkerPool is 0: a session then skips the worker's exec and
// runtime start-up (see BenchmarkSessionStart).
const DefaultWorkerPool = 2

// workerPool keeps started workers waiting for their Start message. Idle
// workers hold nothing of any session: they were started with the same
// hygiene, an empty environment and no descriptors but their pipes. The
// pool is filled after the first session asks for a worker, so a server
// that runs no scripts starts none. Its fields are guarded by mu.
type workerPool struct {
	s    *Server
	size int

	mu      sync.Mutex
	idle    []*worker
	filling int
	closed  bool
	wg      sync.WaitGroup // refill goroutines
}

// get returns an idle worker, or starts one, and tops the pool up.
func (p *workerPool) get() (*worker, error) {
	p.mu.Lock()
	var w *worker
	if n := len(p.idle); n > 0 {
		w = p.idle[n-1]
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	p.refill()
	if w != nil {
		return w, nil
	}
	return p.s.startWorker()
}

// refill starts workers in the background until size are idle or starting.
func (p *workerPool) refill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && len(p.idle)+p.filling < p.size {
		p.filling++
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			w, err := p.s.startWorker()
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
			if w != nil {
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

// discard ends a worker that never got a script.
func (w *worker) discard() {
	w.kill()
	_ = w.cmd.Wait()
	_ = w.stdin.Close()
	_ = w.stdout.Close()
	_ = w.stderr.Close()
}
