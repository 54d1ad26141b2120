package worker

import (
	"fmt"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/hostops"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

// Main is the body of the hidden "keyhole worker" command: it serves
// scripts on stdin and stdout (Serve), one at a time, until its stdin
// ends, and returns the process's exit status. The server sends a worker
// another script only under the rules of Pool (the same principal, the
// same limits, a clean end before). Before each script runs it applies
// the Start message's limits to the whole process:
//
//   - MaxStack: debug.SetMaxStack, so runaway recursion in the interpreter
//     (deep nesting in a script or in json) ends the process with "stack
//     overflow" instead of eating memory.
//   - MaxMemory: debug.SetMemoryLimit (the collector works harder near it)
//     and RLIMIT_DATA at MaxMemory plus runtime headroom, so an allocation
//     past it fails and the runtime exits with "out of memory". Race
//     builds skip RLIMIT_DATA: the race detector's shadow memory counts
//     against it. The server also watches the worker's resident memory.
//   - RLIMIT_CORE 0: a crashing script leaves no core file holding what it
//     read.
//
// It also makes the worker the child subreaper of the programs its script
// runs (hostops.AdoptOrphans): a daemon a program leaves behind (`setsid
// -f`, a double fork) is reparented to the worker, and killed and reaped
// when proc.run or the svc call returns, and again before the worker
// exits. A worker that cannot become a subreaper runs no script.
//
// Decisions go into the ring the server passes at workerproto.RingFD
// (mapped, then the descriptor closed, so no program the script runs
// inherits it); a worker started without one sends them as messages.
// fs.cat passes open files on the socket at workerproto.FDSocketFD.
//
// Everything the runtime says on a fatal error goes to stderr, which the
// server reads to name the reason.
func Main() int {
	ring, err := openRing()
	if err != nil {
		fmt.Fprintf(os.Stderr, "keyhole worker: %v\n", err)
		return 1
	}
	if err := hostops.AdoptOrphans(); err != nil {
		fmt.Fprintf(os.Stderr, "keyhole worker: %v\n", err)
		return 1
	}
	status := 0
	if err := serve(os.Stdin, os.Stdout, ring, openFDSocket(), applyProcessLimits, afterScript); err != nil {
		fmt.Fprintf(os.Stderr, "keyhole worker: %v\n", err)
		status = 1
	}
	if err := hostops.Sweep(); err != nil {
		// The result is sent already; the server logs what this says.
		fmt.Fprintf(os.Stderr, "keyhole worker: %v\n", err)
	}
	return status
}

// afterScript runs between two scripts of a worker the server reuses
// (Pool): it kills and reaps what the script's programs left behind
// (hostops.Sweep), so the next script starts with none of its processes.
// A sweep that fails ends the worker. What the script's values held is
// garbage the next script cannot reach: it is collected as the runtime
// goes (and the server does not park a worker holding much).
func afterScript() error {
	return hostops.Sweep()
}

// openRing maps the decision ring at workerproto.RingFD and closes the
// descriptor. It returns nil when that descriptor is not a ring file (a
// worker started by hand, or by a caller that passes none).
func openRing() (*workerproto.Ring, error) {
	if !workerproto.IsRingFile(workerproto.RingFD) {
		return nil, nil
	}
	f := os.NewFile(workerproto.RingFD, "keyhole-decisions")
	defer f.Close()
	ring, err := workerproto.MapRing(f)
	if err != nil {
		return nil, fmt.Errorf("decision ring: %w", err)
	}
	return ring, nil
}

// openFDSocket returns the descriptor socket at workerproto.FDSocketFD,
// marked close-on-exec so that no program the script runs inherits it, or
// nil when that descriptor is not one (fs.cat then sends file bytes as
// Print messages).
func openFDSocket() *os.File {
	if !workerproto.IsFDSocket(workerproto.FDSocketFD) {
		return nil
	}
	unix.CloseOnExec(workerproto.FDSocketFD)
	return os.NewFile(workerproto.FDSocketFD, "keyhole-fds")
}

// dataHeadroom is what the Go runtime needs besides the script's heap:
// stacks (cgo threads map 8 MiB each), 64 MiB heap arenas, metadata and
// the collector's work, on top of MaxMemory. The tight bound is the
// server's watch of resident memory; this one only has to hold.
const dataHeadroom = 256 << 20

func applyProcessLimits(l workerproto.Limits) error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("rlimit core: %w", err)
	}
	if l.MaxStack > 0 {
		debug.SetMaxStack(int(l.MaxStack))
	}
	if l.MaxMemory > 0 {
		debug.SetMemoryLimit(l.MaxMemory)
		if !raceEnabled {
			lim := uint64(l.MaxMemory) + dataHeadroom
			if err := unix.Setrlimit(unix.RLIMIT_DATA, &unix.Rlimit{Cur: lim, Max: lim}); err != nil {
				return fmt.Errorf("rlimit data: %w", err)
			}
		}
	}
	return nil
}
