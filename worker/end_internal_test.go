package worker

import (
	"errors"
	"os/exec"
	"testing"

	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/outcome"
)

// TestWorkerEndIsDecidedOnce checks that the end of a worker is decided
// from everything that happened, whatever order it happened in: in
// particular a protocol error or a line that could not be written,
// noticed after the worker exited with a result, still ends the script
// INTERNAL (the server cannot kill a process it has already reaped, and
// the result of a worker that broke the protocol is not believed).
func TestWorkerEndIsDecidedOnce(t *testing.T) {
	t.Parallel()
	ok := &End{Exit: 0}
	limit := EndWith(outcome.ExitLimitExceeded, "LIMIT_EXCEEDED", "wall-clock limit of 1s exceeded (worker stopped by the server)")
	exitErr := exec.Command("/bin/sh", "-c", "exit 3").Run()
	type step func(ev *workerEvents)
	var (
		exited    step = func(ev *workerEvents) { ev.exited, ev.waitErr = true, nil }
		exitedBad step = func(ev *workerEvents) { ev.exited, ev.waitErr = true, exitErr }
		result    step = func(ev *workerEvents) { ev.result = ok }
		proto     step = func(ev *workerEvents) { ev.protoErr = errors.New("worker sent print after its result") }
		auditFail step = func(ev *workerEvents) {
			ev.auditErr = &auditFailure{action: "read", resource: "/x", err: errors.New("no space left on device")}
		}
		output  step = func(ev *workerEvents) { ev.overOutput = true }
		killed  step = func(ev *workerEvents) { ev.serverKill(limit) }
		session step = func(ev *workerEvents) { ev.cancelled = true }
	)
	tests := []struct {
		name  string
		steps []step
		exit  int
		msg   string
	}{
		{"result", []step{result, exited}, 0, ""},
		{"result-after-exit", []step{exited, result}, 0, ""},
		{"proto-error-after-result-before-exit", []step{result, proto, exited}, 125, "worker protocol error"},
		{"proto-error-after-result-after-exit", []step{result, exited, proto}, 125, "worker protocol error"},
		{"proto-error-before-result", []step{proto, result, exited}, 125, "worker protocol error"},
		{"audit-failure-after-exit", []step{result, exited, auditFail}, 125, "audit log unwritable, read /x not performed"},
		{"audit-failure-and-proto-error", []step{proto, auditFail, exited}, 125, "audit log unwritable, read /x not performed"},
		{"audit-failure-over-kill", []step{killed, auditFail, exited}, 125, "audit log unwritable, read /x not performed"},
		{"output-cap-over-result", []step{output, exited}, 124, "output limit of 10 bytes exceeded"},
		{"kill-over-result", []step{result, killed, exited}, 124, limit.Err.Message},
		{"kill-after-exit-ignored", []step{result, exited, killed}, 0, ""},
		{"session-end-result-kept", []step{session, result, exited}, 0, ""},
		{"session-end-no-result", []step{session, exited}, 125, "session ended"},
		{"crash", []step{exitedBad}, 125, "worker process exited with status 3 without a result"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ev workerEvents
			for _, s := range tc.steps {
				s(&ev)
			}
			end := ev.end("", workerproto.Limits{MaxOutput: 10})
			msg := ""
			if end.Err != nil {
				msg = end.Err.Message
			}
			if end.Exit != tc.exit || msg != tc.msg {
				t.Errorf("end = %d %q, want %d %q", end.Exit, msg, tc.exit, tc.msg)
			}
		})
	}
}
