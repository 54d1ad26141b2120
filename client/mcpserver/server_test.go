package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/client/mcpserver"
	"github.com/keyhole-dev/keyhole/docs"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

const readPub = `@id("read-pub")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"stat", Keyhole::Action::"list"],
        resource in Keyhole::Dir::"{{SANDBOX}}/pub");`

const noPub = readPub + `
@id("no-pub-on-web03")
forbid (principal, action == Keyhole::Action::"read", resource in Keyhole::Dir::"{{SANDBOX}}/pub");`

// trio is three hosts in group web (web03 also in eu) sharing a sandbox:
// web01 and web02 let role logs read pub/, web03 forbids it by policy
// no-pub-on-web03.
type trio struct {
	env     *fleetEnv
	sandbox string
	srv     *mcpserver.Server
	invPath string
}

func newTrio(t *testing.T, cfg mcpserver.Config) *trio {
	t.Helper()
	e := newFleetEnv(t, "logs")
	sb := filepath.Join(e.dir, "sandbox")
	writeFile(t, filepath.Join(sb, "pub", "motd"), "hello fleet\n")
	allow := testenv.LoadPolicy(t, e.dir, "allow", sb, readPub)
	deny := testenv.LoadPolicy(t, e.dir, "deny", sb, noPub)
	mem := &audit.Memory{}
	h1 := e.start(t, testenv.HostOptions{Policy: allow, Audit: mem})
	h2 := e.start(t, testenv.HostOptions{Policy: allow, Audit: mem})
	h3 := e.start(t, testenv.HostOptions{Policy: deny, Audit: mem})
	inv, p := e.inventory(t, []invHost{{"web01", h1, []string{"web"}}, {"web02", h2, []string{"web"}}, {"web03", h3, []string{"web", "eu"}}})
	cfg.Dialer = e.dialer(t)
	cfg.Inventory = inv
	srv, err := mcpserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &trio{env: e, sandbox: sb, srv: srv, invPath: p}
}

func TestToolsListed(t *testing.T) {
	tr := newTrio(t, mcpserver.Config{})
	cs := connect(t, tr.srv, nil)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]*mcp.Tool{}
	for _, tl := range res.Tools {
		tools[tl.Name] = tl
	}
	run, list := tools["run_script"], tools["list_hosts"]
	if run == nil || list == nil || len(tools) != 2 {
		t.Fatalf("tools %v", tools)
	}
	// Truthful annotations: a script may change hosts; listing reads the
	// inventory only.
	if a := run.Annotations; a == nil || a.ReadOnlyHint || a.DestructiveHint == nil || !*a.DestructiveHint || a.IdempotentHint {
		t.Errorf("run_script annotations %+v", run.Annotations)
	}
	if a := list.Annotations; a == nil || !a.ReadOnlyHint || !a.IdempotentHint {
		t.Errorf("list_hosts annotations %+v", list.Annotations)
	}
	for _, tl := range []*mcp.Tool{run, list} {
		if tl.InputSchema == nil || tl.OutputSchema == nil {
			t.Errorf("%s: input schema %v, output schema %v", tl.Name, tl.InputSchema, tl.OutputSchema)
		}
	}
	in, _ := json.Marshal(run.InputSchema)
	for _, want := range []string{`"hosts"`, `"anyOf"`, `"script"`, `"args"`, `"timeout"`, `"dry_run"`, `"required":["hosts","script"]`} {
		if !strings.Contains(string(in), want) {
			t.Errorf("run_script input schema lacks %s: %s", want, in)
		}
	}
	outSchema, _ := json.Marshal(run.OutputSchema)
	for _, want := range []string{`"denied"`, `"truncated"`, `"policies"`, `"duration_ms"`} {
		if !strings.Contains(string(outSchema), want) {
			t.Errorf("run_script output schema lacks %s: %s", want, outSchema)
		}
	}
	// The description teaches the error kinds.
	for _, k := range []string{"ACCESS_DENIED", "NOT_FOUND", "INVALID_ARGUMENT", "IO_ERROR", "LIMIT_EXCEEDED", "SYNTAX_ERROR", "catch(", "UNREACHABLE"} {
		if !strings.Contains(run.Description, k) {
			t.Errorf("run_script description lacks %s", k)
		}
	}
}

func TestRunScriptRoundTrip(t *testing.T) {
	tr := newTrio(t, mcpserver.Config{})
	progressed := make(chan *mcp.ProgressNotificationParams, 10)
	cs := connect(t, tr.srv, &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
		progressed <- r.Params
	}})
	params := &mcp.CallToolParams{Name: "run_script", Arguments: map[string]any{
		"hosts":  "web",
		"script": `print(fs.read(args["p"]).strip()); result({"n": args["n"]})`,
		"args":   map[string]any{"p": tr.sandbox + "/pub/motd", "n": 7},
	}}
	params.SetProgressToken("tok-1")
	res, err := cs.CallTool(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError {
		t.Errorf("a denied host must make isError")
	}
	var out mcpserver.RunScriptOutput
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Hosts) != 3 {
		t.Fatalf("hosts %s", b)
	}
	for i, name := range []string{"web01", "web02"} {
		h := out.Hosts[i]
		if h.Host != name || h.Outcome != "ok" || h.Exit == nil || *h.Exit != 0 || h.Stdout != "hello fleet\n" || h.Truncated || h.Error != nil || len(h.Denied) != 0 {
			t.Errorf("%s: %+v", name, h)
		}
		if r, _ := json.Marshal(h.Result); string(r) != `{"n":7}` {
			t.Errorf("%s: result %s", name, r)
		}
	}
	h := out.Hosts[2]
	res3 := tr.sandbox + "/pub/motd"
	if h.Host != "web03" || h.Outcome != "access_denied" || h.Exit == nil || *h.Exit != 13 || h.Error == nil ||
		h.Error.Kind != "ACCESS_DENIED" || h.Error.Action != "read" || h.Error.Resource != res3 ||
		!slices.Equal(h.Error.Policies, []string{"no-pub-on-web03"}) {
		t.Errorf("web03: %+v error %+v", h, h.Error)
	}
	if len(h.Denied) != 1 || h.Denied[0].Action != "read" || h.Denied[0].Resource != res3 || !slices.Equal(h.Denied[0].Policies, []string{"no-pub-on-web03"}) {
		t.Errorf("web03 denied %+v", h.Denied)
	}
	if out.Summary != "3 hosts: 2 ok, 1 access denied" {
		t.Errorf("summary %q", out.Summary)
	}
	// The text content carries the same JSON for clients that do not read
	// structured content.
	if !strings.Contains(resultText(res), `"no-pub-on-web03"`) {
		t.Errorf("text content %q", resultText(res))
	}
	// Notifications are sent before the result, and handled by the
	// client as they come: the last may be handled after the call returned.
	var progress []*mcp.ProgressNotificationParams
	timeout := time.After(10 * time.Second)
	for len(progress) < 3 {
		select {
		case p := <-progressed:
			progress = append(progress, p)
		case <-timeout:
			t.Fatalf("%d progress notifications, want 3", len(progress))
		}
	}
	select {
	case p := <-progressed:
		t.Fatalf("a fourth progress notification: %+v", p)
	default:
	}
	slices.SortFunc(progress, func(a, b *mcp.ProgressNotificationParams) int { return int(a.Progress - b.Progress) })
	for i, p := range progress {
		if p.ProgressToken != "tok-1" || p.Progress != float64(i+1) || p.Total != 3 || !strings.HasPrefix(p.Message, "web0") {
			t.Errorf("progress %d: %+v", i, p)
		}
	}
}

func TestRunScriptResults(t *testing.T) {
	tr := newTrio(t, mcpserver.Config{MaxStdout: 20})
	cs := connect(t, tr.srv, nil)
	motd := tr.sandbox + "/pub/motd"
	cases := []struct {
		name    string
		args    map[string]any
		isError bool
		check   func(t *testing.T, out mcpserver.RunScriptOutput)
	}{
		{name: "caught-denial-is-data", args: map[string]any{"hosts": []string{"web03"},
			"script": `v, err = catch(fs.read, args["p"])
print(err.policies[0])`, "args": map[string]any{"p": motd}},
			check: func(t *testing.T, out mcpserver.RunScriptOutput) {
				h := out.Hosts[0]
				if h.Outcome != "ok" || h.Stdout != "no-pub-on-web03\n" || len(h.Denied) != 1 || h.Denied[0].Policies[0] != "no-pub-on-web03" {
					t.Errorf("%+v", h)
				}
			}},
		{name: "syntax-error-has-its-line", args: map[string]any{"hosts": "web01", "script": "x = 1\nprint(x\n"}, isError: true,
			check: func(t *testing.T, out mcpserver.RunScriptOutput) {
				h := out.Hosts[0]
				if h.Outcome != "script_error" || *h.Exit != 2 || h.Error.Kind != "SYNTAX_ERROR" || !strings.Contains(h.Error.Message, ":3:") {
					t.Errorf("%+v %+v", h, h.Error)
				}
			}},
		{name: "stdout-capped", args: map[string]any{"hosts": "web01", "script": `print("a" * 15); print("é" * 10)`},
			check: func(t *testing.T, out mcpserver.RunScriptOutput) {
				h := out.Hosts[0]
				// 16 bytes of the first line, then 2 of é: cut at a character boundary.
				if !h.Truncated || h.Stdout != strings.Repeat("a", 15)+"\n"+"éé" {
					t.Errorf("%q truncated %v", h.Stdout, h.Truncated)
				}
			}},
		{name: "list-of-patterns-each-host-once", args: map[string]any{"hosts": []string{"eu", "web0[2:3]", "web03"}, "script": `print(1)`},
			check: func(t *testing.T, out mcpserver.RunScriptOutput) {
				var names []string
				for _, h := range out.Hosts {
					names = append(names, h.Host)
				}
				if !slices.Equal(names, []string{"web03", "web02"}) {
					t.Errorf("hosts %v", names)
				}
			}},
		{name: "large-result-dropped", args: map[string]any{"hosts": "web01", "script": `result("x" * 70000)`},
			check: func(t *testing.T, out mcpserver.RunScriptOutput) {
				if h := out.Hosts[0]; h.Outcome != "ok" || h.Result != nil || !h.ResultDropped {
					t.Errorf("%+v", h)
				}
			}},
		{name: "script-error", args: map[string]any{"hosts": "web01", "script": `fail("boom")`}, isError: true,
			check: func(t *testing.T, out mcpserver.RunScriptOutput) {
				if h := out.Hosts[0]; h.Error.Kind != "SCRIPT_ERROR" || !strings.Contains(h.Error.Message, "boom") {
					t.Errorf("%+v", h.Error)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, out := callRun(t, cs, c.args)
			if res.IsError != c.isError {
				t.Errorf("isError %v, want %v: %s", res.IsError, c.isError, resultText(res))
			}
			if len(out.Hosts) == 0 {
				t.Fatalf("no hosts: %s", resultText(res))
			}
			c.check(t, out)
		})
	}
}

// Bad calls are error results that say what is wrong; nothing runs, and
// the server still serves.
func TestRunScriptBadInput(t *testing.T) {
	mem := &audit.Memory{}
	e := newFleetEnv(t, "logs")
	sb := filepath.Join(e.dir, "sandbox")
	h := e.start(t, testenv.HostOptions{Policy: testenv.LoadPolicy(t, e.dir, "allow", sb, readPub), Audit: mem})
	inv, _ := e.inventory(t, []invHost{{"web01", h, []string{"web"}}})
	srv, err := mcpserver.New(mcpserver.Config{Dialer: e.dialer(t), Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, srv, nil)
	cases := []struct {
		name string
		args map[string]any
		want string
	}{
		{"no-match", map[string]any{"hosts": "db", "script": "print(1)"}, `no group or host matches "db"`},
		{"typo-in-list", map[string]any{"hosts": []string{"web01", "web1"}, "script": "print(1)"}, `no group or host matches "web1"`},
		{"at-file", map[string]any{"hosts": "@/etc/passwd", "script": "print(1)"}, "@file patterns are not taken"},
		{"empty-script", map[string]any{"hosts": "web", "script": ""}, "script"},
		{"blank-script", map[string]any{"hosts": "web", "script": "  \n"}, "script is empty"},
		{"no-hosts", map[string]any{"script": "print(1)"}, "hosts"},
		{"empty-list", map[string]any{"hosts": []string{}, "script": "print(1)"}, "hosts"},
		{"hosts-a-number", map[string]any{"hosts": 3, "script": "print(1)"}, "hosts"},
		{"timeout-too-long", map[string]any{"hosts": "web", "script": "print(1)", "timeout": 7200}, "timeout"},
		{"timeout-negative", map[string]any{"hosts": "web", "script": "print(1)", "timeout": -1}, "timeout"},
		{"args-not-object", map[string]any{"hosts": "web", "script": "print(1)", "args": "x"}, "args"},
		{"unknown-field", map[string]any{"hosts": "web", "script": "print(1)", "dryrun": true}, "dryrun"},
		{"dry-run-not-bool", map[string]any{"hosts": "web", "script": "print(1)", "dry_run": "yes"}, "dry_run"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_script", Arguments: c.args})
			if err != nil {
				t.Fatalf("protocol error %v: a bad call must be a tool error", err)
			}
			if !res.IsError || !strings.Contains(resultText(res), c.want) {
				t.Errorf("isError %v, text %q, want %q", res.IsError, resultText(res), c.want)
			}
		})
	}
	for _, ev := range mem.Events() {
		if ev.Event == "session.start" {
			t.Errorf("a bad call ran a script: %+v", ev)
		}
	}
	// Still serving.
	res, out := callRun(t, cs, map[string]any{"hosts": "web", "script": "print(2)"})
	if res.IsError || out.Hosts[0].Stdout != "2\n" {
		t.Errorf("after bad calls: %s", resultText(res))
	}
}

func TestListHostsAndResources(t *testing.T) {
	tr := newTrio(t, mcpserver.Config{Login: "ops"})
	cs := connect(t, tr.srv, nil)
	ctx := context.Background()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_hosts", Arguments: map[string]any{"pattern": "web:!web02"}})
	if err != nil || res.IsError {
		t.Fatalf("%v %s", err, resultText(res))
	}
	var out mcpserver.ListHostsOutput
	b, _ := json.Marshal(res.StructuredContent)
	json.Unmarshal(b, &out)
	if len(out.Hosts) != 2 || out.Hosts[0].Name != "web01" || out.Hosts[1].Name != "web03" || out.Hosts[1].User != "logs" ||
		!slices.Equal(out.Hosts[1].Groups, []string{"eu", "web"}) || out.Hosts[0].Addr != "127.0.0.1" || out.Hosts[0].Port == 0 {
		t.Errorf("list_hosts %s", b)
	}
	if !slices.Contains(out.Groups, "eu") || !slices.Contains(out.Groups, "all") {
		t.Errorf("groups %v", out.Groups)
	}
	if res, _ := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_hosts", Arguments: map[string]any{"pattern": "wbe"}}); !res.IsError || !strings.Contains(resultText(res), `matches "wbe"; did you mean web?`) {
		t.Errorf("bad pattern: %s", resultText(res))
	}
	if res, _ := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_hosts", Arguments: map[string]any{}}); res.IsError || !strings.Contains(resultText(res), "web02") {
		t.Errorf("default pattern: %s", resultText(res))
	}

	rl, err := cs.ListResources(ctx, nil)
	if err != nil || len(rl.Resources) != 2 {
		t.Fatalf("resources %v %v", rl, err)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: mcpserver.ScriptsURI})
	if err != nil {
		t.Fatal(err)
	}
	// The served reference is docs/scripts.md as it is in the tree.
	page, err := os.ReadFile("../../docs/scripts.md")
	if err != nil {
		t.Fatal(err)
	}
	if rr.Contents[0].Text != string(page) || docs.Scripts != string(page) || rr.Contents[0].MIMEType != "text/markdown" {
		t.Errorf("the served script reference is not docs/scripts.md")
	}
	rr, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: mcpserver.InventoryURI})
	if err != nil {
		t.Fatal(err)
	}
	var inv mcpserver.ListHostsOutput
	if err := json.Unmarshal([]byte(rr.Contents[0].Text), &inv); err != nil || len(inv.Hosts) != 3 {
		t.Errorf("inventory resource %q: %v", rr.Contents[0].Text, err)
	}
}

// Calls run at once on one server, each on its own connections, and each
// gets its own hosts' results.
func TestConcurrentCalls(t *testing.T) {
	tr := newTrio(t, mcpserver.Config{})
	cs := connect(t, tr.srv, nil)
	const calls = 6
	errs := make(chan error, calls)
	for i := range calls {
		go func() {
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_script", Arguments: map[string]any{
				"hosts": []string{"web01", "web02"}, "script": `print(args["i"])`, "args": map[string]any{"i": i}}})
			if err != nil {
				errs <- err
				return
			}
			var out mcpserver.RunScriptOutput
			b, _ := json.Marshal(res.StructuredContent)
			json.Unmarshal(b, &out)
			want := fmt.Sprintf("%d\n", i)
			if res.IsError || len(out.Hosts) != 2 || out.Hosts[0].Stdout != want || out.Hosts[1].Stdout != want {
				errs <- fmt.Errorf("call %d: %s", i, b)
				return
			}
			errs <- nil
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
