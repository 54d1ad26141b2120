package main

import (
	"io"
	"os"
	"os/exec"

	"github.com/sirupsen/logrus"

	"github.com/keyhole-dev/keyhole/sshserver"
	"github.com/keyhole-dev/keyhole/starlarkrt"
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
	return starlarkrt.WorkerMain()
}

// selfWorker is the server's worker command: this very binary, by its
// absolute path, run as "keyhole worker" (argv[0] is "keyhole" whatever
// the file is called, which the CLI tests rely on). When the binary cannot
// be found, it logs why and returns nil, and every script ends INTERNAL.
func selfWorker(log logrus.FieldLogger) func() *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		log.WithError(err).Error("keyhole: cannot find this binary to start workers; scripts will fail")
		return nil
	}
	return sshserver.WorkerCommand(exe, "keyhole", "worker")
}
