package mcpserver_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/client/mcpserver"
	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// events collects audit events and wakes waiters as they come.
type events struct {
	mu   sync.Mutex
	all  []audit.Event
	wake chan struct{}
}

func newEvents() *events { return &events{wake: make(chan struct{}, 1)} }

func (e *events) Log(ev audit.Event) error {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

func (e *events) count(kind string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if ev.Event == kind {
			n++
		}
	}
	return n
}

// waitCount waits until n events of kind were logged, or d passes.
func (e *events) waitCount(t *testing.T, kind string, n int, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for e.count(kind) < n {
		select {
		case <-e.wake:
		case <-deadline.C:
			t.Fatalf("%d %s events after %v, want %d", e.count(kind), kind, d, n)
		}
	}
}

// pidWorker wraps the test worker so that each worker process appends
// its pid to file before it becomes the worker (exec keeps the pid).
func pidWorker(t *testing.T, file string) func() *exec.Cmd {
	inner := testenv.TestWorker(t)
	return func() *exec.Cmd {
		c := inner()
		wrapped := exec.Command("/bin/sh", append([]string{"-c", `echo $$ >> "$0"; exec "$@"`, file, c.Path}, c.Args[1:]...)...)
		wrapped.Env = c.Env
		return wrapped
	}
}

func readPids(t *testing.T, file string) []int {
	b, _ := os.ReadFile(file)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// Cancelling a run_script mid-fan-out ends the remote scripts: each
// server sees its session close and kills the worker, within a second.
func TestCancelEndsRemoteWorkers(t *testing.T) {
	e := newFleetEnv(t, "logs")
	sb := filepath.Join(e.dir, "sandbox")
	writeFile(t, filepath.Join(sb, "pub", "motd"), "hello\n")
	pol := testenv.LoadPolicy(t, e.dir, "allow", sb, readPub)
	ev := newEvents()
	pidFile := filepath.Join(e.dir, "pids")
	spin := sshserver.Limits{MaxSteps: 1 << 60, MaxWall: time.Minute}
	var hosts []invHost
	for _, name := range []string{"spin1", "spin2", "spin3"} {
		h := e.start(t, testenv.HostOptions{Policy: pol, Audit: ev, Limits: spin, Worker: pidWorker(t, pidFile)})
		hosts = append(hosts, invHost{name, h, []string{"spin"}})
	}
	inv, _ := e.inventory(t, hosts)
	srv, err := mcpserver.New(mcpserver.Config{Dialer: e.dialer(t), Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	progressed := make(chan string, 3)
	cs := connect(t, srv, &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
		progressed <- r.Params.Message
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	params := &mcp.CallToolParams{Name: "run_script", Arguments: map[string]any{
		"hosts":  "spin",
		"script": "fs.stat(args[\"p\"])\nwhile True:\n    pass\n",
		"args":   map[string]any{"p": sb + "/pub/motd"},
	}}
	params.SetProgressToken(1)
	callErr := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, params)
		callErr <- err
	}()
	// Every host's script has made its first decision: all three spin.
	ev.waitCount(t, "decision", 3, 20*time.Second)
	pids := readPids(t, pidFile)
	if len(pids) != 3 {
		t.Fatalf("worker pids %v", pids)
	}
	for _, p := range pids {
		if err := syscall.Kill(p, 0); err != nil {
			t.Fatalf("worker %d not running before the cancel: %v", p, err)
		}
	}
	select {
	case m := <-progressed:
		t.Fatalf("a host ended before the cancel: %s", m)
	default:
	}
	cancel()
	if err := <-callErr; !errors.Is(err, context.Canceled) {
		t.Errorf("call error %v", err)
	}
	start := time.Now()
	bound := slowdown * time.Second
	ev.waitCount(t, "session.end", 3, bound)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for _, p := range pids {
		for syscall.Kill(p, 0) == nil {
			if time.Since(start) > bound {
				t.Fatalf("worker %d still running %v after the cancel", p, time.Since(start))
			}
			<-tick.C
		}
	}
	// The server still serves the client.
	res, out := callRun(t, cs, map[string]any{"hosts": "spin1", "script": "print(3)"})
	if res.IsError || out.Hosts[0].Stdout != "3\n" {
		t.Errorf("after the cancel: %s", resultText(res))
	}
}
