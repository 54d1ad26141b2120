package bench_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// clientHostsEnv names how many hosts TestClientMemory fans out to
// ("200"); unset, the test skips.
const clientHostsEnv = "KEYHOLE_CLIENT_HOSTS"

// TestClientMemory measures the client's memory per host: the keyhole
// server runs as its own process (the real binary, built here), so the
// heap measured is the client's alone. The hosts are N names of that one
// server. It reports the heap and stacks held per open connection, and
// the peak per host of a fan-out with every host at once and with 50.
func TestClientMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(clientHostsEnv))
	if n <= 0 {
		t.Skipf("set %s=N to measure the client's memory per host", clientHostsEnv)
	}
	fx := startServeProcess(t, n, `@id("nothing")
forbid (principal, action, resource);`)
	targets := fx.targets(n)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := client.NewDialer(client.Config{Identities: []string{fx.key}, KnownHosts: []string{fx.knownHosts}, NoAgent: true})
	must(err)
	defer d.Close()

	// Open connections, each having run one script.
	base := heapAndStacks()
	clients := make([]*client.Client, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	var failed atomic.Int64
	for i := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := d.Dial(context.Background(), targets[i])
			if err != nil {
				failed.Add(1)
				return
			}
			if _, err := c.Run(context.Background(), `print("up")`, nil); err != nil {
				failed.Add(1)
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	held := heapAndStacks()
	for _, c := range clients {
		if c != nil {
			c.Close()
		}
	}
	if failed.Load() > 0 {
		t.Fatalf("%d of %d hosts failed", failed.Load(), n)
	}
	perConn := float64(held-base) / float64(n)
	t.Logf("open connections: %d hosts, %.1f KiB per connection (heap in use + stacks)", n, perConn/1024)

	for _, par := range []int{n, 50} {
		runtime.GC()
		base := heapAndStacks()
		var peak atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if v := heapAndStacksNoGC(); v > peak.Load() {
						peak.Store(v)
					}
				}
			}
		}()
		start := time.Now()
		results := d.FanOut(context.Background(), targets, `print("up")`, client.FanOutOptions{Parallel: par})
		elapsed := time.Since(start)
		close(stop)
		<-sampled
		sum := client.Summarize(results)
		if sum.ExitStatus() != 0 {
			t.Fatalf("fan-out: %s", sum)
		}
		inFlight := min(par, n)
		t.Logf("fan-out of %d hosts, -f %d: %v, peak %.1f KiB per host in flight (%.1f MiB over the base)",
			n, par, elapsed.Round(time.Millisecond), float64(peak.Load()-base)/float64(inFlight)/1024, float64(peak.Load()-base)/(1<<20))
	}
}

// heapAndStacks is the heap in use and the goroutine stacks after a GC.
func heapAndStacks() uint64 {
	runtime.GC()
	return heapAndStacksNoGC()
}

func heapAndStacksNoGC() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// serveProcess is keyhole serve running as its own process, built from
// this tree, with a user CA and a key certified for "logs" and the
// current user.
type serveProcess struct {
	dir, ca, key, knownHosts string
	host                     string
	port                     int
	bin                      string // the keyhole binary built
	pid                      int    // keyhole serve's process id
}

func (s *serveProcess) targets(n int) []client.Target {
	targets := make([]client.Target, n)
	for i := range targets {
		targets[i] = client.Target{Name: fmt.Sprintf("web%04d", i), Addr: s.host, Port: s.port, User: "logs"}
	}
	return targets
}

// startServeProcess builds cmd/keyhole and starts keyhole serve with
// policy (a Cedar text; "{{DIR}}" is the test's directory) and its
// connection caps raised above n.
func startServeProcess(t *testing.T, n int, policy string) *serveProcess {
	t.Helper()
	testenv.NeedBinary(t, "ssh-keygen")
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "keyhole")
	build := exec.Command("go", "build", "-o", bin, "./cmd/keyhole")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	me, err := user.Current()
	must(err)
	ca := testenv.NewKey(t, dir, "ca")
	key := testenv.NewKey(t, dir, "id_ed25519")
	testenv.Cert(t, ca, key+".pub", "agent-7", "logs,"+me.Username, "-V", "-5m:+1h")
	must(os.MkdirAll(filepath.Join(dir, "policies"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "policies", "p.cedar"), []byte(strings.ReplaceAll(policy, "{{DIR}}", dir)), 0o644))
	conf := fmt.Sprintf(`listen = "127.0.0.1:0"
host_key = %q
trusted_user_ca_keys = %q
policy_dir = %q
audit_log = %q
[limits]
max_connections = %d
max_connections_per_user = %d
max_startups = %d
max_startups_per_source = %d
`, filepath.Join(dir, "host_key"), ca+".pub", filepath.Join(dir, "policies"), filepath.Join(dir, "audit.log"), 2*n+10, 2*n+10, 2*n+10, 2*n+10)
	must(os.WriteFile(filepath.Join(dir, "keyhole.toml"), []byte(conf), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, bin, "serve", "--config", filepath.Join(dir, "keyhole.toml"), "--addr-file", filepath.Join(dir, "addr"))
	must(srv.Start())
	t.Cleanup(func() { cancel(); _ = srv.Wait() })
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		b, _ := os.ReadFile(filepath.Join(dir, "addr"))
		addr = strings.TrimSpace(string(b))
		if addr == "" {
			if time.Now().After(deadline) {
				t.Fatal("server did not start")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	must(err)
	host, port, _ := strings.Cut(addr, ":")
	kh := filepath.Join(dir, "known_hosts")
	must(os.WriteFile(kh, []byte("["+host+"]:"+port+" "+string(pub)), 0o644))
	p, _ := strconv.Atoi(port)
	return &serveProcess{dir: dir, ca: ca, key: key, knownHosts: kh, host: host, port: p, bin: bin, pid: srv.Process.Pid}
}

// clientVsSSHEnv names how many hosts TestClientVsSSHProcesses runs one
// script on ("40"); unset, the test skips.
const clientVsSSHEnv = "KEYHOLE_CLIENT_VS_SSH"

// TestClientVsSSHProcesses compares keyhole run's fan-out (one process,
// a connection per host, 20 at once) with the model of parallel-ssh -p
// 20: one stock ssh process per host, 20 at once, against OpenSSH's sshd
// running cat. Both read the same small file on N names of one server on
// loopback. Three runs each, alternating; the best of each is reported.
func TestClientVsSSHProcesses(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(clientVsSSHEnv))
	if n <= 0 {
		t.Skipf("set %s=N to compare keyhole run with one ssh process per host", clientVsSSHEnv)
	}
	testenv.NeedBinary(t, "ssh")
	if testenv.SSHDPath() == "" {
		t.Skip("sshd not installed")
	}
	const par = 20
	fx := startServeProcess(t, n, `@id("read")
permit (principal, action == Keyhole::Action::"read", resource in Keyhole::Dir::"{{DIR}}/pub");`)
	file := filepath.Join(fx.dir, "pub", "small.txt")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("a small file of 29 bytes....\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sshd := testenv.StartSSHD(t, testenv.SSHDOptions{Dir: t.TempDir(), TrustedUserCAKeys: fx.ca + ".pub", Home: t.TempDir()})
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	d, err := client.NewDialer(client.Config{Identities: []string{fx.key}, KnownHosts: []string{fx.knownHosts}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	targets := fx.targets(n)
	keyholeRun := func() time.Duration {
		start := time.Now()
		res := d.FanOut(context.Background(), targets, `print(fs.read(args["p"]).strip())`,
			client.FanOutOptions{Parallel: par, Args: map[string]any{"p": file}})
		el := time.Since(start)
		if s := client.Summarize(res); s.ExitStatus() != 0 {
			t.Fatalf("keyhole: %s: %v", s, res[0].Err)
		}
		return el
	}
	sshRun := func() time.Duration {
		start := time.Now()
		sem := make(chan struct{}, par)
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				cmd := testenv.SSHCommand(context.Background(), sshd.KnownHosts, sshd.Addr, me.Username, fx.key, fx.key+"-cert.pub", "cat "+file)
				out, err := cmd.Output()
				if err != nil || string(out) != "a small file of 29 bytes....\n" {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		if failed.Load() > 0 {
			t.Fatalf("ssh: %d of %d failed\n%s", failed.Load(), n, sshd.Log())
		}
		return time.Since(start)
	}
	bestK, bestS := time.Duration(1<<62), time.Duration(1<<62)
	for range 3 {
		bestK = min(bestK, keyholeRun())
		bestS = min(bestS, sshRun())
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("%d hosts, %d at once: keyhole run %v, one ssh process per host %v: %.1fx (load %s)",
		n, par, bestK.Round(time.Millisecond), bestS.Round(time.Millisecond), float64(bestS)/float64(bestK), strings.Fields(string(load))[0])
}
