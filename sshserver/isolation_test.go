package sshserver_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
	"github.com/keyhole-dev/keyhole/worker"
)

// runXC runs script over exec with an x/crypto client and returns its
// stdout, stderr and exit status.
func runXC(t *testing.T, e *testenv.Env, script string) (string, string, int) {
	t.Helper()
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr strings.Builder
	s.Stdout, s.Stderr = &stdout, &stderr
	err = s.Run(script)
	exit := 0
	if err != nil {
		var ee *gossh.ExitError
		if !asExit(err, &ee) {
			t.Fatalf("run: %v", err)
		}
		exit = ee.ExitStatus()
	}
	return stdout.String(), stderr.String(), exit
}

// sessionEnd waits for the session.end line of the session that read
// marker, and returns that session's events in order.
func sessionOf(t *testing.T, e *testenv.Env, marker string) []map[string]any {
	t.Helper()
	var sid any
	e.WaitAudit(t, func(ev map[string]any) bool {
		if ev["resource"] == marker {
			sid = ev["session"]
		}
		return sid != nil && ev["session"] == sid && ev["event"] == "session.end"
	})
	var out []map[string]any
	for _, ev := range e.Audit(t) {
		if ev["session"] == sid {
			out = append(out, ev)
		}
	}
	return out
}

// TestWorkerIsolation runs scripts that end their worker abnormally: each
// ends its own session with a clear error, every decision made before the
// end is in the audit log, and the server serves the next client.
func TestWorkerIsolation(t *testing.T) {
	e := startEnv(t, sshserver.Limits{MaxMemory: 256 << 20, MaxStack: 4 << 20, MaxWall: time.Minute, MaxSteps: 1 << 40})
	marker := e.Sandbox + "/logs/app.log"
	read := fmt.Sprintf("fs.stat(%q)\n", marker)
	tests := []struct {
		name     string
		script   string
		wantExit int
		wantErr  string
	}{
		{"memory-big-string", read + `s = "x" * ((1 << 30) - 1)` + "\nprint(len(s))", 124, "LIMIT_EXCEEDED: memory limit of 268435456 bytes exceeded"},
		{"memory-big-list", read + `l = [None] * (1 << 26)` + "\nprint(len(l))", 124, "LIMIT_EXCEEDED: memory limit of 268435456 bytes exceeded"},
		{"memory-growing-list", read + "l = []\nwhile True:\n    l.append(\"%d\" % len(l))", 124, "LIMIT_EXCEEDED: memory limit of 268435456 bytes exceeded"},
		{"stack-overflow-deep-value", read + "x = []\nfor i in range(100000):\n    x = [x]\nprint(len(str(x)))", 124, "LIMIT_EXCEEDED: interpreter stack limit"},
		{"deep-nesting-syntax", read + strings.Repeat("[", 100000) + strings.Repeat("]", 100000), 2, "SYNTAX_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, exit := runXC(t, e, tt.script)
			if exit != tt.wantExit || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d stderr %q stdout %q, want %d and %q", exit, stderr, stdout, tt.wantExit, tt.wantErr)
			}
			if tt.wantExit == 2 {
				return // never ran: no decision
			}
			evs := sessionOf(t, e, marker)
			var kinds []string
			for _, ev := range evs {
				kinds = append(kinds, fmt.Sprint(ev["event"], " ", ev["resource"]))
			}
			if len(evs) < 3 || evs[1]["event"] != "decision" || evs[len(evs)-1]["exit"] != float64(tt.wantExit) {
				t.Errorf("session's audit lines: %v, last %v", kinds, evs[len(evs)-1])
			}
			stillServes(t, e)
		})
	}
}

// pidHook records the pid of the worker of each script the server runs,
// and how many scripts that worker ran before it.
type pidHook struct {
	mu   sync.Mutex
	pids []int
	runs []int
}

func (h *pidHook) Levels() []logrus.Level { return logrus.AllLevels }
func (h *pidHook) Fire(en *logrus.Entry) error {
	if en.Message == "worker started" {
		h.mu.Lock()
		h.pids = append(h.pids, en.Data["pid"].(int))
		h.runs = append(h.runs, en.Data["runs"].(int))
		h.mu.Unlock()
	}
	return nil
}

func (h *pidHook) last() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pids) == 0 {
		return 0
	}
	return h.pids[len(h.pids)-1]
}

func TestWorkerKilled(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel)
	hook := &pidHook{}
	log.AddHook(hook)
	e := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"logs.cedar": logsPolicy},
		Files:    sandboxFiles,
		Limits:   sshserver.Limits{MaxWall: time.Minute, MaxSteps: 1 << 40},
		Log:      log,
	})
	marker := e.Sandbox + "/logs/app.log"
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	s.Stderr = &stderr
	if err := s.Start(fmt.Sprintf("fs.stat(%q)\nprint(\"ready\")\nwhile True: pass", marker)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	pid := hook.last()
	if pid == 0 {
		t.Fatal("no worker pid logged")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = s.Wait()
	var ee *gossh.ExitError
	if !asExit(err, &ee) || ee.ExitStatus() != 125 || !strings.Contains(stderr.String(), "INTERNAL: worker process killed by signal 9") {
		t.Errorf("err %v stderr %q", err, stderr.String())
	}
	evs := sessionOf(t, e, marker)
	if len(evs) != 3 || evs[1]["event"] != "decision" || evs[2]["exit"] != float64(125) {
		t.Errorf("session's audit lines: %v", evs)
	}
	stillServes(t, e)
}

// TestMisbehavingWorker runs the server against workers that break the
// protocol, as a subverted worker might: the session ends INTERNAL, what
// the worker may say is logged with the session's own identity, nothing it
// may not say is, and the server serves the next client.
func TestMisbehavingWorker(t *testing.T) {
	tests := []struct {
		mode      string
		wantExit  int
		wantErr   string
		decisions int
	}{
		{"exit-without-result", 125, "INTERNAL: worker process exited with status 3 without a result", 1},
		{"garbage", 125, "INTERNAL: worker protocol error", 1},
		{"huge-frame", 125, "INTERNAL: worker protocol error", 0},
		{"forged-event", 125, "INTERNAL: worker protocol error", 0},
		{"bad-exit", 125, "INTERNAL: worker protocol error", 0},
		{"after-result", 125, "INTERNAL: worker protocol error", 0},
		{"forged-identity", 0, "", 1},
		{"ring-garbage", 125, "INTERNAL: worker protocol error", 0},
		{"ring-decision-then-garbage", 125, "INTERNAL: worker protocol error", 1},
		{"ring-bad-head", 125, "INTERNAL: worker protocol error", 0},
		{"ring-bad-length", 125, "INTERNAL: worker protocol error", 0},
		{"ring-unmarked-print", 125, "INTERNAL: worker protocol error", 0},
		{"sync-with-payload", 125, "INTERNAL: worker protocol error", 0},
		{"ring-truncate", 0, "", 1},
		{"ring-killed", 125, "INTERNAL: worker process killed by signal 9", 1},
		// More decisions than the operation cap (5 here) allows an honest
		// worker: the server writes the cap's worth and one more, then
		// stops believing it.
		{"decision-flood", 125, "INTERNAL: worker protocol error", fakeMaxOperations + 1},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			mode := tt.mode
			e := testenv.Start(t, testenv.Options{
				Policies: map[string]string{"logs.cedar": logsPolicy},
				Limits:   sshserver.Limits{MaxOperations: fakeMaxOperations},
				Worker: func() *exec.Cmd {
					cmd := worker.Command(exe, "fake-worker")()
					cmd.Env = []string{fakeWorkerEnv + "=" + mode}
					return cmd
				},
			})
			stdout, stderr, exit := runXC(t, e, `print("hi")`)
			if exit != tt.wantExit || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d stderr %q, want %d %q", exit, stderr, tt.wantExit, tt.wantErr)
			}
			if stdout != "" {
				t.Errorf("stdout %q from a worker that broke the protocol", stdout)
			}
			end := e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "session.end" })
			evs := e.Audit(t)
			var ds []map[string]any
			for _, ev := range evs {
				if ev["session"] != end["session"] && ev["event"] != "auth.refused" {
					t.Errorf("audit line of another session: %v", ev)
				}
				if ev["event"] == "decision" {
					ds = append(ds, ev)
				}
			}
			if len(ds) != tt.decisions {
				t.Fatalf("decisions %v, want %d", ds, tt.decisions)
			}
			for _, d := range ds {
				if d["user"] != "agent-7" || d["role"] != "logs" || d["session"] != end["session"] ||
					d["resource"] != "/fake/before" || strings.HasPrefix(fmt.Sprint(d["time"]), "2020") {
					t.Errorf("decision line not the session's own: %v", d)
				}
			}
		})
	}
}

// TestWorkerKilledAfterRead: a worker killed with SIGKILL right after a
// read, before the server took that read's decision out of the worker's
// ring, still has the decision's line in the audit log, before the
// session's end. The client does not read its output, so the server is
// stuck forwarding the script's first print when the read happens and
// takes nothing from the ring until the worker is gone.
func TestWorkerKilledAfterRead(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel)
	hook := &pidHook{}
	log.AddHook(hook)
	e := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"logs.cedar": logsPolicy},
		Files:    sandboxFiles,
		Limits:   sshserver.Limits{MaxWall: time.Minute, MaxSteps: 1 << 40, MaxOutput: 64 << 20},
		Log:      log,
	})
	marker := e.Sandbox + "/logs/app.log"
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.StdoutPipe(); err != nil { // never read
		t.Fatal(err)
	}
	// More than the client's window (2 MiB), then the read, then 256 MiB
	// of memory to say the read is done, then nothing but computing.
	script := fmt.Sprintf("print(\"a\" * (8 << 20))\nfs.read(%q)\nx = \"x\" * (256 << 20)\nwhile True: pass", marker)
	if err := s.Start(script); err != nil {
		t.Fatal(err)
	}
	var pid int
	waitFor(t, "the worker to start", func() bool { pid = hook.last(); return pid != 0 })
	base := residentBytes(pid)
	waitFor(t, "the worker to pass the read", func() bool { return residentBytes(pid) > base+200<<20 })
	for _, ev := range e.Audit(t) {
		if ev["resource"] == marker {
			t.Fatalf("the read's line was written while the server was stuck: %v", ev)
		}
	}
	// The worker holds its ring mapped, not open: a program it ran would
	// not inherit it.
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); strings.Contains(l, "keyhole-decisions") {
			t.Errorf("worker holds its ring open as descriptor %s", fd.Name())
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	evs := sessionOf(t, e, marker)
	if len(evs) != 3 || evs[1]["event"] != "decision" || evs[1]["action"] != "read" || evs[1]["decision"] != "allow" ||
		evs[2]["event"] != "session.end" {
		t.Errorf("session's audit lines: %v", evs)
	}
}

// waitFor waits until cond holds, failing the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// residentBytes returns the resident memory of process pid, or 0.
func residentBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * int64(os.Getpagesize())
}

// TestDecisionLoggedWhileComputing: the line of a decision is written
// while the script that made it is still running, with nothing printed
// since: the server takes the worker's decisions when its pipe is quiet.
func TestDecisionLoggedWhileComputing(t *testing.T) {
	e := startEnv(t, sshserver.Limits{MaxWall: time.Minute, MaxSteps: 1 << 40})
	marker := e.Sandbox + "/logs/app.log"
	c := dial(t, e, "logs")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(fmt.Sprintf("fs.stat(%q)\nwhile True: pass", marker)); err != nil {
		t.Fatal(err)
	}
	d := e.WaitAudit(t, func(ev map[string]any) bool { return ev["resource"] == marker })
	for _, ev := range e.Audit(t) {
		if ev["session"] == d["session"] && ev["event"] == "session.end" {
			t.Fatalf("the line came with the session's end: %v", ev)
		}
	}
	s.Close()
	e.WaitAudit(t, func(ev map[string]any) bool { return ev["session"] == d["session"] && ev["event"] == "session.end" })
}

// TestNoRingLeak runs sessions that end every way a worker ends and
// checks that the server holds no ring mapped or open afterwards.
func TestNoRingLeak(t *testing.T) {
	e := testenv.Start(t, testenv.Options{
		Policies:   map[string]string{"logs.cedar": logsPolicy},
		Files:      sandboxFiles,
		Limits:     sshserver.Limits{MaxWall: time.Second, MaxSteps: 1 << 40},
		WorkerPool: -1,
	})
	marker := e.Sandbox + "/logs/app.log"
	before := ringsHeld(t)
	for _, script := range []string{
		fmt.Sprintf("print(fs.read(%q))", marker),
		fmt.Sprintf("fs.read(%q + \"/nope\")", e.Sandbox+"/secrets"),
		"syntax error(",
		"while True: pass",
		fmt.Sprintf("fs.stat(%q)\nx = [0] * (1 << 40)", marker),
	} {
		runXC(t, e, script)
	}
	// A worker parked for the principal's next script keeps its ring
	// until it ends.
	if after, parked := ringsHeld(t), e.Server.ParkedWorkers(); after != before+parked {
		t.Errorf("rings held: %d before, %d after with %d workers parked", before, after, parked)
	}
}

// ringsHeld counts the decision rings this process maps or holds open.
func ringsHeld(t *testing.T) int {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(maps), "keyhole-decisions")
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, _ := os.Readlink("/proc/self/fd/" + fd.Name()); strings.Contains(l, "keyhole-decisions") {
			n++
		}
	}
	return n
}
