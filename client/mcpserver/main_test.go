package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/client/inventory"
	"github.com/keyhole-dev/keyhole/client/mcpserver"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fleetEnv is a user CA, a user key certified for role "logs" (key id
// agent-7), and the known_hosts and inventory lines of the hosts started.
type fleetEnv struct {
	dir     string
	caPub   string
	caKey   string
	userKey string
	login   string // the certificate's principal, the hosts' ansible_user

	mu      sync.Mutex
	khLines []string
}

func newFleetEnv(t testing.TB, principals string) *fleetEnv {
	t.Helper()
	return newFleetEnvAs(t, "agent-7", principals)
}

// newFleetEnvAs is newFleetEnv with a certificate of key id id.
func newFleetEnvAs(t testing.TB, id, principals string) *fleetEnv {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &fleetEnv{dir: dir, login: principals}
	e.caKey = testenv.NewKey(t, dir, "ca")
	e.caPub = e.caKey + ".pub"
	e.userKey = testenv.NewKey(t, dir, "id_ed25519")
	testenv.Cert(t, e.caKey, e.userKey+".pub", id, principals, "-V", "-5m:+1h")
	return e
}

// start starts a host trusting the env's CA; safe for concurrent use.
func (e *fleetEnv) start(t testing.TB, opts testenv.HostOptions) *testenv.Host {
	t.Helper()
	opts.CAPub = e.caPub
	h := testenv.StartHost(t, opts)
	e.mu.Lock()
	e.khLines = append(e.khLines, h.KnownHostsLine())
	e.mu.Unlock()
	return h
}

// dialer connects with the env's key and the hosts started so far.
func (e *fleetEnv) dialer(t testing.TB) *client.Dialer {
	t.Helper()
	kh := filepath.Join(e.dir, "known_hosts")
	e.mu.Lock()
	text := strings.Join(e.khLines, "")
	e.mu.Unlock()
	writeFile(t, kh, text)
	d, err := client.NewDialer(client.Config{Identities: []string{e.userKey}, KnownHosts: []string{kh},
		NoAgent: true, ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// invHost is one line of an INI inventory.
type invHost struct {
	name   string
	host   *testenv.Host
	groups []string
}

// inventory writes an INI inventory of hosts (user e.login) and loads it.
func (e *fleetEnv) inventory(t testing.TB, hosts []invHost) (*inventory.Inventory, string) {
	t.Helper()
	byGroup := map[string][]string{}
	var order []string
	for _, h := range hosts {
		for _, g := range h.groups {
			if _, ok := byGroup[g]; !ok {
				order = append(order, g)
			}
			byGroup[g] = append(byGroup[g], fmt.Sprintf("%s ansible_host=%s ansible_port=%s ansible_user=%s", h.name, h.host.Host, h.host.Port, e.login))
		}
	}
	var b strings.Builder
	for _, g := range order {
		fmt.Fprintf(&b, "[%s]\n%s\n\n", g, strings.Join(byGroup[g], "\n"))
	}
	p := filepath.Join(e.dir, "inventory.ini")
	writeFile(t, p, b.String())
	inv, err := inventory.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return inv, p
}

// connect serves srv to an in-process go-sdk client and returns the
// client's session.
func connect(t testing.TB, srv *mcpserver.Server, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ct, st := mcp.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := srv.MCP().Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, opts)
	cs, err := c.Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

// callRun calls run_script and decodes its structured content.
func callRun(t testing.TB, cs *mcp.ClientSession, args map[string]any) (*mcp.CallToolResult, mcpserver.RunScriptOutput) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_script", Arguments: args})
	if err != nil {
		t.Fatalf("run_script: protocol error %v", err)
	}
	var out mcpserver.RunScriptOutput
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("structured content %s: %v", b, err)
		}
	}
	return res, out
}

// resultText is the text content of a tool result.
func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
