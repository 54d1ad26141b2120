package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/client/inventory"
	"github.com/keyhole-dev/keyhole/client/mcpserver"
)

// mcpVsRunEnv names how many hosts TestMCPVsRun runs one script on
// ("40"); unset, the test skips.
const mcpVsRunEnv = "KEYHOLE_MCP_VS_RUN"

// TestMCPVsRun compares one run_script call to N hosts with keyhole run
// to the same hosts (20 at once): keyhole run --inventory as a process
// per run, and its fan-out in-process (client.Dialer.FanOut, already
// started); run_script through keyhole mcp as its own process (the
// binary built here, started once, as an agent's client keeps it), and
// through the MCP server in-process (the protocol layer alone). The hosts are N names of
// one keyhole serve process on loopback. Five runs each, alternating;
// the best and the median of each are reported.
func TestMCPVsRun(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(mcpVsRunEnv))
	if n <= 0 {
		t.Skipf("set %s=N to compare run_script with keyhole run's fan-out", mcpVsRunEnv)
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
	const script = `print(fs.read(args["p"]).strip())`
	args := map[string]any{"p": file}
	var inv strings.Builder
	inv.WriteString("[fleet]\n")
	for _, tg := range fx.targets(n) {
		fmt.Fprintf(&inv, "%s ansible_host=%s ansible_port=%d ansible_user=logs\n", tg.Name, tg.Addr, tg.Port)
	}
	invPath := filepath.Join(fx.dir, "fleet.ini")
	if err := os.WriteFile(invPath, []byte(inv.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	d, err := client.NewDialer(client.Config{Identities: []string{fx.key}, KnownHosts: []string{fx.knownHosts}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	targets := fx.targets(n)
	fanOut := func() time.Duration {
		start := time.Now()
		res := d.FanOut(context.Background(), targets, script, client.FanOutOptions{Parallel: par, Args: args})
		el := time.Since(start)
		if s := client.Summarize(res); s.ExitStatus() != 0 {
			t.Fatalf("fan-out: %s: %v", s, res[0].Err)
		}
		return el
	}

	// keyhole run, the binary, one process per run as a person runs it.
	runProcess := func() time.Duration {
		cmd := exec.Command(filepath.Join(fx.dir, "keyhole"), "run", "--inventory", invPath, "-f", strconv.Itoa(par),
			"-i", fx.key, "--known-hosts", fx.knownHosts, "--no-agent", "-e", script, "--arg", "p="+file)
		start := time.Now()
		b, err := cmd.Output()
		el := time.Since(start)
		if err != nil || strings.Count(string(b), "a small file of 29 bytes....") != n {
			t.Fatalf("keyhole run: %v\n%s", err, b)
		}
		return el
	}

	// keyhole mcp, the binary.
	cmd := exec.Command(filepath.Join(fx.dir, "keyhole"), "mcp", "--inventory", invPath, "-i", fx.key,
		"--known-hosts", fx.knownHosts, "--no-agent", "-f", strconv.Itoa(par))
	cmd.Stderr = os.Stderr
	ctx := context.Background()
	procSession, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer procSession.Close()

	// The server in-process.
	loaded, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mcpserver.New(mcpserver.Config{Dialer: d, Inventory: loaded, Parallel: par})
	if err != nil {
		t.Fatal(err)
	}
	ct, st := mcp.NewInMemoryTransports()
	ss, err := srv.MCP().Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	inSession, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { inSession.Close(); ss.Wait() }()

	call := func(cs *mcp.ClientSession) func() time.Duration {
		return func() time.Duration {
			start := time.Now()
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_script", Arguments: map[string]any{"hosts": "fleet", "script": script, "args": args}})
			el := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			var out mcpserver.RunScriptOutput
			b, _ := json.Marshal(res.StructuredContent)
			json.Unmarshal(b, &out)
			if res.IsError || len(out.Hosts) != n || out.Hosts[n-1].Stdout != "a small file of 29 bytes....\n" {
				t.Fatalf("run_script: %s", b)
			}
			return el
		}
	}
	ways := []struct {
		name string
		run  func() time.Duration
		took []time.Duration
	}{
		{name: "fan-out (keyhole run's, in-process)", run: fanOut},
		{name: "keyhole run --inventory, a process", run: runProcess},
		{name: "run_script, keyhole mcp process", run: call(procSession)},
		{name: "run_script, in-process", run: call(inSession)},
	}
	// One warm-up each: the first connections pay for the page cache and
	// the server's first workers.
	for i := range ways {
		ways[i].run()
	}
	for range 5 {
		for i := range ways {
			ways[i].took = append(ways[i].took, ways[i].run())
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	base := median(ways[0].took)
	for _, w := range ways {
		t.Logf("%d hosts, %d at once: %-36s best %v median %v (%.2fx the fan-out's median)", n, par, w.name,
			best(w.took).Round(time.Millisecond), median(w.took).Round(time.Millisecond), float64(median(w.took))/float64(base))
	}
	t.Logf("load %s", strings.Fields(string(load))[0])
}

func best(ds []time.Duration) time.Duration {
	b := ds[0]
	for _, d := range ds {
		b = min(b, d)
	}
	return b
}
