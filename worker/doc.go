// Package worker is the worker process, both of its ends in one package
// (DESIGN.md, "Worker process per script"; docs/WORKER.md).
//
// The server's end (run.go, pool.go, ring.go) is Pool: it starts workers
// with their hygiene (own process group, SIGKILL when the server dies, cwd
// "/", no environment, only the three pipes and the decision ring as
// descriptors), keeps some idle with the policy set of record preloaded,
// and Pool.Run runs one Start message to its end: it enforces the
// wall-clock and memory limits from outside, takes the decisions out of
// the ring and writes them to the audit log on the caller's template,
// forwards prints, and decides how the script ended, even when the worker
// crashes or is killed.
//
// The worker's end (serve.go, preload.go, main_linux.go) is Main, the body
// of the hidden "keyhole worker" command: it reads one Start message
// (internal/workerproto), applies the script's limits to the process, runs
// the script with starlarkrt over a hostops.Host, puts every decision in
// the decision ring the server passed (or sends it as a message) and
// sends every print and the result back. Serve is the same exchange over
// any reader and writer, without a ring and without touching the process.
//
// Invariants:
//   - Every decision the worker sent or put is in the audit log before Run
//     returns, so before the caller reports the script's end.
//   - A worker that breaks the protocol, or whose decision line cannot be
//     written, is killed and nothing more it says is believed or forwarded.
package worker
