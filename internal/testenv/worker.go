package testenv

import (
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"

	"github.com/keyhole-dev/keyhole/worker"
)

// workerEnv, set to "1" in a test binary's environment, makes Main serve
// one script as a keyhole worker instead of running the tests.
const workerEnv = "KEYHOLE_TESTENV_WORKER"

// mainRan records that Main is the package's TestMain, so re-executing the
// test binary gives a worker and not a second run of the tests.
var mainRan bool

// Main is the TestMain of every package whose tests start a server: the
// server's workers are this test binary re-executed, and Main turns such a
// process into a worker (worker.Main), as the hidden "keyhole
// worker" command does in the real binary. It also checks that no
// goroutine outlives the tests (goleak).
func Main(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(worker.Main())
	}
	mainRan = true
	// Every server a test starts is closed by its cleanup, and Close waits
	// for the sessions: nothing of a session may still run after the tests.
	goleak.VerifyTestMain(m)
}

// TestWorker returns a worker command that re-executes the running test
// binary as a worker. The package's TestMain must call Main.
func TestWorker(t testing.TB) func() *exec.Cmd {
	t.Helper()
	if !mainRan {
		t.Fatal("testenv: the package's TestMain must call testenv.Main")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mk := worker.Command(exe, "keyhole-test-worker")
	return func() *exec.Cmd {
		cmd := mk()
		cmd.Env = []string{workerEnv + "=1"}
		return cmd
	}
}
