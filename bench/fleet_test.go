package bench_test

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// fleetEnv names the host counts TestFleetTools runs one script on
// ("40,200,1000"); unset, the test skips. fleetToolsUpToEnv is the
// largest count parallel-ssh and ansible run at too (default 200: past
// it only keyhole runs); fleetParEnv the hosts run at once by every tool
// (default 40); fleetRunsEnv the runs of each tool per count, the best
// reported (default 3).
const (
	fleetEnv          = "KEYHOLE_FLEET_BENCH"
	fleetToolsUpToEnv = "KEYHOLE_FLEET_TOOLS_UPTO"
	fleetParEnv       = "KEYHOLE_FLEET_PAR"
	fleetRunsEnv      = "KEYHOLE_FLEET_RUNS"
)

// fleetContent is the file every host reads.
const fleetContent = "a small file of 29 bytes....\n"

// fleetRun is one tool's run over every host: its wall time, the CPU
// of the tool's process and the processes it waited for (ssh clients,
// ansible's forks), and the CPU the server process and the processes it
// reaped (keyhole's workers, sshd's per-connection processes) spent
// meanwhile.
type fleetRun struct {
	wall, clientCPU, serverCPU time.Duration
}

// TestFleetTools runs one script (read a 29-byte file) on N hosts with
// three tools, each a process started here, in one run: keyhole run
// --inventory against keyhole serve (built here, its own process), and
// parallel-ssh and ansible's raw module against OpenSSH's sshd (as
// deployed: certificate login, a re-exec per connection, cat). The N
// hosts are N names of one server of each kind. After one unmeasured
// run of each tool, the tools take turns, KEYHOLE_FLEET_RUNS runs each;
// the best and the median are logged, with each tool's CPU and the
// server's. Tools not installed are skipped with the reason logged.
func TestFleetTools(t *testing.T) {
	spec := os.Getenv(fleetEnv)
	if spec == "" {
		t.Skipf("set %s=40,200,1000 to compare keyhole run with parallel-ssh and ansible", fleetEnv)
	}
	var sizes []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("%s: bad host count %q", fleetEnv, f)
		}
		sizes = append(sizes, n)
	}
	envInt := func(name string, def int) int {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				t.Fatalf("%s: bad value %q", name, v)
			}
			return n
		}
		return def
	}
	upTo, par, runs := envInt(fleetToolsUpToEnv, 200), envInt(fleetParEnv, 40), envInt(fleetRunsEnv, 3)
	maxN := 0
	for _, n := range sizes {
		maxN = max(maxN, n)
	}

	fx := startServeProcess(t, max(maxN, par), `@id("read")
permit (principal, action == Keyhole::Action::"read", resource in Keyhole::Dir::"{{DIR}}/pub");`)
	file := filepath.Join(fx.dir, "pub", "small.txt")
	must(t, os.MkdirAll(filepath.Dir(file), 0o755))
	must(t, os.WriteFile(file, []byte(fleetContent), 0o644))
	me, err := user.Current()
	must(t, err)

	// The other tools, when installed, against sshd.
	type tool struct {
		name string
		run  func(n int) (fleetRun, error)
	}
	tools := []tool{{"keyhole run", func(n int) (fleetRun, error) { return keyholeFleet(t, fx, file, n, par) }}}
	var sshd *testenv.SSHD
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Log("skipping parallel-ssh and ansible: ssh not installed")
	} else if testenv.SSHDPath() == "" {
		t.Log("skipping parallel-ssh and ansible: sshd not installed")
	} else {
		sshd = testenv.StartSSHD(t, testenv.SSHDOptions{Dir: t.TempDir(), TrustedUserCAKeys: fx.ca + ".pub", Home: t.TempDir()})
		sshOpts := []string{
			"IdentitiesOnly=yes", "IdentityAgent=none", "BatchMode=yes", "StrictHostKeyChecking=yes",
			"UserKnownHostsFile=" + sshd.KnownHosts, "CertificateFile=" + fx.key + "-cert.pub",
			"IdentityFile=" + fx.key, "LogLevel=ERROR",
		}
		if p, err := exec.LookPath("parallel-ssh"); err != nil {
			t.Log("skipping parallel-ssh: not installed (Debian: apt-get install pssh)")
		} else {
			tools = append(tools, tool{"parallel-ssh", func(n int) (fleetRun, error) {
				return psshFleet(t, p, sshd, sshOpts, me.Username, file, n, par)
			}})
		}
		if p, err := exec.LookPath("ansible"); err != nil {
			t.Log("skipping ansible: not installed (Debian: apt-get install ansible-core)")
		} else {
			tools = append(tools, tool{"ansible -m raw", func(n int) (fleetRun, error) {
				return ansibleFleet(t, p, sshd, sshOpts, me.Username, file, n, par)
			}})
		}
	}

	loadavg := func() string {
		b, _ := os.ReadFile("/proc/loadavg")
		return strings.Join(strings.Fields(string(b))[:3], " ")
	}
	// One run of each tool first, not measured: the page cache, keyhole
	// serve's worker pool and sshd warm up as on a server long running.
	for _, tl := range tools {
		if _, err := tl.run(sizes[0]); err != nil {
			t.Fatalf("%s, warming up on %d hosts: %v", tl.name, sizes[0], err)
		}
	}
	perHost := map[int]time.Duration{}
	for _, n := range sizes {
		t.Logf("load average before %d hosts: %s", n, loadavg())
		all := make([][]fleetRun, len(tools))
		for range runs {
			for i, tl := range tools {
				if i > 0 && n > upTo {
					continue
				}
				r, err := tl.run(n)
				if err != nil {
					t.Fatalf("%s on %d hosts: %v", tl.name, n, err)
				}
				all[i] = append(all[i], r)
			}
		}
		// The best and the median run of each tool, by wall time.
		best := make([]fleetRun, len(tools))
		median := make([]fleetRun, len(tools))
		for i := range tools {
			if len(all[i]) == 0 {
				continue
			}
			slices.SortFunc(all[i], func(a, b fleetRun) int { return cmp.Compare(a.wall, b.wall) })
			best[i], median[i] = all[i][0], all[i][len(all[i])/2]
		}
		for i, tl := range tools {
			if best[i].wall == 0 {
				continue
			}
			ratio := ""
			if i > 0 {
				ratio = fmt.Sprintf("; %.1fx keyhole's best, %.1fx its median", float64(best[i].wall)/float64(best[0].wall),
					float64(median[i].wall)/float64(median[0].wall))
			}
			t.Logf("%d hosts, %d at once, %s: best %v (%v per host), client CPU %v, server CPU %v; median %v%s",
				n, min(par, n), tl.name, best[i].wall.Round(time.Millisecond), (best[i].wall / time.Duration(n)).Round(10*time.Microsecond),
				best[i].clientCPU.Round(time.Millisecond), best[i].serverCPU.Round(time.Millisecond), median[i].wall.Round(time.Millisecond), ratio)
		}
		perHost[n] = median[0].wall / time.Duration(n)
		t.Logf("load average after %d hosts: %s", n, loadavg())
	}
	for _, n := range sizes[1:] {
		t.Logf("keyhole run's median wall time per host at %d hosts is %.2fx that at %d (1.00 is linear)",
			n, float64(perHost[n])/float64(perHost[sizes[0]]), sizes[0])
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// procCPU is the user and system CPU of process pid, of the children
// it has waited for, and of its live descendants (pooled workers), from
// /proc/PID/stat.
func procCPU(pid int) time.Duration {
	var ticks int64
	ents, _ := os.ReadDir("/proc")
	parent := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(p); len(f) > 2 {
			pp, _ := strconv.Atoi(f[2])
			parent[pp] = append(parent[pp], p)
		}
	}
	var walk func(p int)
	walk = func(p int) {
		f := procStat(p)
		if len(f) < 16 {
			return
		}
		// After the name: state is field 0, ppid 1 (here 2 with the pid
		// put first); utime, stime, cutime, cstime are fields 11 to 14
		// (12 to 15 here), in clock ticks (USER_HZ, 100 on Linux).
		for _, x := range f[12:16] {
			v, _ := strconv.ParseInt(x, 10, 64)
			ticks += v
		}
		for _, c := range parent[p] {
			walk(c)
		}
	}
	walk(pid)
	return time.Duration(ticks) * 10 * time.Millisecond
}

// procStat is /proc/PID/stat's fields: the pid, then those after the
// name.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return append([]string{strconv.Itoa(pid)}, strings.Fields(s[i+1:])...)
}

// timeCommand runs cmd with the server process serverPid busy meanwhile
// and returns its run, its stdout and an error that carries its output
// when it failed.
func timeCommand(cmd *exec.Cmd, serverPid int) (fleetRun, string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	s0 := procCPU(serverPid)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	r := fleetRun{wall: wall, serverCPU: procCPU(serverPid) - s0}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.clientCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if err != nil {
		return r, stdout.String(), fmt.Errorf("%s: %v\nstdout: %s\nstderr: %s", cmd.Args[0], err, tail(stdout.String()), tail(stderr.String()))
	}
	return r, stdout.String(), nil
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// wantLines checks that out holds content once per host.
func wantLines(out string, n int) error {
	if got := strings.Count(out, strings.TrimSpace(fleetContent)); got != n {
		return fmt.Errorf("the file's line came back from %d of %d hosts:\n%s", got, n, tail(out))
	}
	return nil
}

// keyholeFleet runs keyhole run --inventory on an INI inventory of n
// names of the keyhole server.
func keyholeFleet(t *testing.T, fx *serveProcess, file string, n, par int) (fleetRun, error) {
	inv := filepath.Join(fx.dir, fmt.Sprintf("inventory-%d.ini", n))
	if _, err := os.Stat(inv); err != nil {
		var b strings.Builder
		b.WriteString("[web]\n")
		for i := range n {
			fmt.Fprintf(&b, "web%04d ansible_host=%s ansible_port=%d ansible_user=logs\n", i, fx.host, fx.port)
		}
		must(t, os.WriteFile(inv, []byte(b.String()), 0o644))
	}
	cmd := exec.Command(fx.bin, "run", "--inventory", inv, "--limit", "all", "-f", strconv.Itoa(par),
		"-i", fx.key, "--known-hosts", fx.knownHosts, "--no-agent",
		"-e", `print(fs.read(args["p"]).strip())`, "--arg", "p="+file)
	r, out, err := timeCommand(cmd, fx.pid)
	if err == nil {
		err = wantLines(out, n)
	}
	return r, err
}

// psshFleet runs parallel-ssh on a hosts file naming sshd n times.
func psshFleet(t *testing.T, bin string, sshd *testenv.SSHD, sshOpts []string, login, file string, n, par int) (fleetRun, error) {
	dir := filepath.Dir(sshd.KnownHosts)
	hosts := filepath.Join(dir, fmt.Sprintf("pssh-hosts-%d", n))
	if _, err := os.Stat(hosts); err != nil {
		must(t, os.WriteFile(hosts, []byte(strings.Repeat(login+"@"+sshd.Addr+"\n", n)), 0o644))
	}
	args := []string{"-p", strconv.Itoa(par), "-t", "0", "-i", "-h", hosts, "-x", "-F /dev/null"}
	for _, o := range sshOpts {
		args = append(args, "-O", o)
	}
	args = append(args, "cat "+file)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	r, out, err := timeCommand(cmd, sshd.Pid)
	if err == nil {
		err = wantLines(out, n)
	}
	return r, err
}

// ansibleFleet runs ansible all -m raw on an INI inventory of n names of
// sshd. Connection sharing (ControlMaster) is off: every name is the same
// host, port and user, which would otherwise share one connection.
func ansibleFleet(t *testing.T, bin string, sshd *testenv.SSHD, sshOpts []string, login, file string, n, par int) (fleetRun, error) {
	dir := filepath.Dir(sshd.KnownHosts)
	inv := filepath.Join(dir, fmt.Sprintf("ansible-%d.ini", n))
	host, port, _ := strings.Cut(sshd.Addr, ":")
	if _, err := os.Stat(inv); err != nil {
		var b strings.Builder
		b.WriteString("[web]\n")
		for i := range n {
			fmt.Fprintf(&b, "web%04d ansible_host=%s ansible_port=%s ansible_user=%s\n", i, host, port, login)
		}
		must(t, os.WriteFile(inv, []byte(b.String()), 0o644))
	}
	home := filepath.Join(dir, "ansible-home")
	must(t, os.MkdirAll(home, 0o700))
	conf := filepath.Join(dir, "ansible.cfg")
	must(t, os.WriteFile(conf, nil, 0o644))
	sshArgs := "-F /dev/null -o ControlMaster=no -o ControlPath=none"
	for _, o := range sshOpts {
		sshArgs += " -o " + o
	}
	cmd := exec.Command(bin, "all", "-i", inv, "-m", "raw", "-a", "cat "+file, "-f", strconv.Itoa(par), "-o")
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=", "HOME="+home, "ANSIBLE_CONFIG="+conf,
		"ANSIBLE_SSH_ARGS="+sshArgs, "ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"))
	r, out, err := timeCommand(cmd, sshd.Pid)
	if err == nil {
		err = wantLines(out, n)
	}
	return r, err
}
