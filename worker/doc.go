// Package worker is the worker process: both of its ends, in one package.
//
// The worker's end (serve.go, preload.go, main_linux.go) is Main, the body
// of the hidden "keyhole worker" command: it reads one Start message
// (internal/workerproto), applies the script's limits to the process, runs
// the script with starlarkrt over a hostops.Host, puts every decision in
// the decision ring the server passed (or sends it as a message) and
// sends every print and the result back. Serve is the same exchange over
// any reader and writer, without a ring and without touching the process.
package worker
