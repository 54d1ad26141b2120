package sshserver

// Every script runs in a worker process (DESIGN.md, "Worker process per
// script"); package worker starts, pools and supervises them. The session
// builds the Start message and the audit template, and says where prints
// and decisions go.

import (
	"cmp"
	"context"
	"encoding/json"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/starlarkrt"
	"github.com/keyhole-dev/keyhole/worker"
)

// Worker defaults.
const (
	// DefaultMaxMemory is the default cap on a worker's memory.
	DefaultMaxMemory = 512 << 20
	// DefaultMaxStack caps one interpreter goroutine's stack: deep nesting
	// ends the worker with a stack overflow long before memory runs out.
	DefaultMaxStack = 64 << 20
)

// DefaultWorkerPool is how many started, idle workers the server keeps
// when Config.WorkerPool is 0: a session then skips the worker's exec and
// runtime start-up (see BenchmarkSessionStart).
const DefaultWorkerPool = 2

// runWorker runs st in a worker from the server's pool and returns how it
// ended. opt says where prints and decisions go (Print, Decision; each
// called from the reading goroutine, in order); runWorker fills in the
// rest: decisions are logged on event, the session's own template (who,
// where, under which policy, the script's hash), so the worker supplies
// only what each operation decided.
func (ss *session) runWorker(ctx context.Context, st *workerproto.Start, event audit.Event, opt worker.RunOptions) *worker.End {
	defer ss.scriptRunning()() // idle.go: a running script keeps its connection
	defer ss.observeRun()()
	opt.Template = event
	opt.Policy = ss.policy
	opt.Log = ss.s.cfg.Log.WithField("session", ss.sid)
	opt.Stuck = func() { _ = ss.ch.Close() }
	return shutdownEnd(ctx, ss.s.pool.Run(ctx, st, opt))
}

// startMessage is the Start message of the session's script: the identity
// of the key that authenticated, the request context and the version of
// the session's policy set; Pool.Run adds a copy of the set's files
// unless the worker preloaded that version. The worker is not told the
// session's audit fields: the server writes every line from its own.
func (ss *session) startMessage(src, sum string, args json.RawMessage, transport string) *workerproto.Start {
	lim := ss.s.cfg.Limits
	wall := lim.MaxWall
	if wall == 0 {
		wall = starlarkrt.DefaultMaxWall
	}
	steps := lim.MaxSteps
	if steps == 0 {
		steps = starlarkrt.DefaultMaxSteps
	}
	output := lim.MaxOutput
	if output == 0 {
		output = starlarkrt.DefaultMaxOutput
	}
	return &workerproto.Start{
		Filename:  "script",
		Script:    src,
		Args:      args,
		Principal: *ss.id, // authz.Principal is keys.Identity
		Context: authz.Context{
			SourceIP:     addrOf(ss.conn.RemoteAddr()),
			Now:          ss.s.cfg.Clock(),
			SessionID:    ss.sid,
			ScriptSHA256: sum,
			Transport:    transport,
		},
		PolicyVersion: ss.policy.Version(),
		Limits: workerproto.Limits{
			MaxSteps:  steps,
			MaxWall:   wall,
			MaxOutput: output,
			MaxMemory: lim.MaxMemory,
			MaxStack:  cmp.Or(lim.MaxStack, DefaultMaxStack),
			// Per-script totals of bytes moved, and the program output cap.
			MaxRead:       lim.MaxRead,
			MaxWrite:      lim.MaxWrite,
			MaxExecOutput: lim.MaxExecOutput,
			MaxOperations: cmp.Or(lim.MaxOperations, DefaultMaxOperations),
		},
		ServiceManager: ss.s.cfg.ServiceManager,
	}
}
