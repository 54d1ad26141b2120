package worker

import "github.com/keyhole-dev/keyhole/authz"

// Observer is told what the pool and its runs do, for metrics (package
// metrics implements it). Its methods must be safe for concurrent use and
// must not block: IdleWorkers is called with the pool's lock held, so
// that the last value it is told is the pool's.
type Observer interface {
	// WorkerStarted is told of every worker start, successful or not.
	WorkerStarted(ok bool)
	// IdleWorkers is told how many started workers wait in the pool,
	// whenever that changes.
	IdleWorkers(n int)
	// ParkedWorkers is told how many workers are parked for their
	// principal's next script (reuse.go), whenever that changes.
	ParkedWorkers(n int)
	// Decision is told of every decision line written to the audit log
	// for a worker, once it is written. action is one of the schema's
	// actions, or "other" for a name the worker made up.
	Decision(action string, allow bool)
}

// startObserved is start, told to the observer.
func (p *Pool) startObserved() (*worker, error) {
	w, err := p.start()
	if p.cfg.Observer != nil {
		p.cfg.Observer.WorkerStarted(err == nil)
	}
	return w, err
}

// idleChanged tells the observer how many workers are idle; p.mu must be
// held.
func (p *Pool) idleChanged() {
	if p.cfg.Observer != nil {
		p.cfg.Observer.IdleWorkers(len(p.idle))
	}
}

// parkedChanged tells the observer how many workers are parked; p.mu
// must be held.
func (p *Pool) parkedChanged() {
	if p.cfg.Observer != nil {
		p.cfg.Observer.ParkedWorkers(p.parked.n)
	}
}

// observeDecision tells o of a decision line that is written. The action
// label is bounded: a worker reports what it likes, so a name outside the
// schema counts as "other".
func observeDecision(o Observer, action string, allow bool) {
	if o == nil {
		return
	}
	if !authz.IsAction(action) {
		action = "other"
	}
	o.Decision(action, allow)
}
