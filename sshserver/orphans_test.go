package sshserver_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// daemonAlive reports whether pid is still one of the daemons the test
// started: running (not a zombie), as `sleep 300` or, before its exec, as
// a shell whose command line names dir (so a pid reused by another
// process does not count).
func daemonAlive(pid int, dir string) bool {
	p := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(p + "/stat")
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || len(stat) < i+3 || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile(p + "/cmdline")
	return err == nil && (bytes.Equal(cmdline, []byte("sleep\x00300\x00")) || bytes.Contains(cmdline, []byte(dir)))
}

// TestProcRunDaemonDies: a program run by proc.run that starts a daemon
// with `setsid -f` (its own session and process group, out of reach of
// the kill of the program's group) does not leave it running: the worker
// adopts it and kills it before proc.run returns, through a real server
// and worker process.
func TestProcRunDaemonDies(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid on this machine")
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	e := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"logs.cedar": logsPolicy, "sh.cedar": fmt.Sprintf(
			`@id("sh") permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::%q);`, sh)},
		Files:  sandboxFiles,
		Limits: sshserver.Limits{MaxWall: time.Minute},
	})
	// The program starts a daemon in a session of its own (p1), which
	// starts another in a session of its own (p2, its child until p1
	// dies), and waits until both have written their pid; both then
	// become `sleep 300`.
	script := filepath.Join(e.Dir, "daemons.sh")
	if err := os.WriteFile(script, []byte(`dir=$1
setsid -f sh -c 'setsid sh -c "echo \$\$ > $0/p2.tmp && mv $0/p2.tmp $0/p2 && exec sleep 300" & echo $$ > $0/p1.tmp && mv $0/p1.tmp $0/p1 && exec sleep 300' "$dir"
while [ ! -s "$dir/p1" ] || [ ! -s "$dir/p2" ]; do sleep 0.01; done
echo started
`), 0o644); err != nil {
		t.Fatal(err)
	}
	pidOf := func(name string) int {
		data, err := os.ReadFile(filepath.Join(e.Dir, name))
		if err != nil {
			return 0
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return pid
	}
	t.Cleanup(func() {
		for _, name := range []string{"p1", "p2"} {
			if pid := pidOf(name); pid > 0 && daemonAlive(pid, e.Dir) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	start := time.Now()
	stdout, stderr, exit := runXC(t, e, fmt.Sprintf("r = proc.run([%q, %q, %q], timeout = 30)\nprint(r.exit, r.stdout.strip())\n", sh, script, e.Dir))
	took := time.Since(start)
	if exit != 0 || stdout != "0 started\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", exit, stdout, stderr)
	}
	for _, name := range []string{"p1", "p2"} {
		pid := pidOf(name)
		if pid == 0 {
			t.Fatalf("no pid in %s", name)
		}
		// Killed and reaped before proc.run returned: no waiting here.
		if daemonAlive(pid, e.Dir) {
			t.Errorf("daemon %s (%d) started through proc.run still runs after the session", name, pid)
		}
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && bytes.Contains(stat, []byte("(sleep) Z")) {
			t.Errorf("daemon %s (%d) left unreaped: %s", name, pid, stat)
		}
	}
	// The daemon held the program's output pipes: killed, it does not
	// keep proc.run waiting for them.
	if took > 10*time.Second {
		t.Errorf("the session took %v", took)
	}
	stillServes(t, e)
}
