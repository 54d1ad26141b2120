package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/keyhole-dev/keyhole/worker"
)

// cmdWorker is the hidden "keyhole worker" command: the process the server
// starts for each script (DESIGN.md, "Worker process per script"). It talks
// the worker protocol on stdin and stdout, so it takes no flags and says
// nothing by the CLI's messages rule; a person running it by hand gets a
// usage error.
func cmdWorker(args []string, stderr io.Writer) int {
	if len(args) != 0 {
		report(&usageError{"worker takes no arguments"}, stderr)
		return 2
	}
	return worker.Main()
}

// selfWorker is the server's worker command: this very binary, by its
// absolute path, run as "keyhole worker" (argv[0] is "keyhole" whatever
// the file is called, which the CLI tests rely on). A server whose scripts
// could only fail does not start: when the binary cannot be found or is not
// a regular executable file, selfWorker returns the reason.
func selfWorker() (func() *exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary to start workers: %w", err)
	}
	return workerAt(exe)
}

// workerAt is selfWorker for the binary at exe.
func workerAt(exe string) (func() *exec.Cmd, error) {
	fi, err := os.Stat(exe)
	if err != nil {
		return nil, fmt.Errorf("find this binary to start workers: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("this binary %s is not an executable file; workers cannot start", exe)
	}
	return worker.Command(exe, "keyhole", "worker"), nil
}
