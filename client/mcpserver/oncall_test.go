package mcpserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/client/mcpserver"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// The on-call story (docs/agents.md): 40 hosts, each with its own
// /var/log/app; web07, web19 and api04 log repeated errors. An agent with
// only keyhole's MCP tools finds exactly those three, restarts app where
// the policy allows it (the web tier's change window is open, the api
// tier's is not), is denied on api04, changes course (collects the
// evidence for a person instead) and writes a report. The scripted agent
// below is that agent, with no model.

const (
	findScript = `lines = fs.tail("/var/log/app/app.log", 500)
errors = [l for l in lines if " ERROR " in l]
result({"errors": len(errors), "last": errors[-1] if errors else None})
`
	restartScript = `svc.restart("app")
print("app restarted")
`
	evidenceScript = `result(fs.tail("/var/log/app/app.log", 3))
`
	repeatedErrors = 10 // errors in the last 500 lines that make a host a suspect
)

var (
	errorHosts = []string{"web07", "web19", "api04"}
	// The story's output in docs/agents.md, checked against the run.
	storyBegin = "<!-- oncall-story: begin (written by TestOnCallStory; KEYHOLE_UPDATE_DOCS=1 rewrites it) -->\n"
	storyEnd   = "<!-- oncall-story: end -->\n"
)

// oncallPolicy is the policy block of docs/agents.md, with the change
// window set to [from, to).
func oncallPolicy(t *testing.T, from, to time.Time) string {
	t.Helper()
	page, err := os.ReadFile("../../docs/agents.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(page), "<!-- oncall-policy: begin -->\n```cedar\n")
	block, _, ok2 := strings.Cut(rest, "```\n<!-- oncall-policy: end -->")
	if !ok || !ok2 {
		t.Fatal("docs/agents.md: no oncall-policy block")
	}
	const winFrom, winTo = `datetime("2026-11-28T02:00:00Z")`, `datetime("2026-11-28T04:00:00Z")`
	if strings.Count(block, winFrom) != 1 || strings.Count(block, winTo) != 1 {
		t.Fatalf("docs/agents.md: the policy's window is not %s to %s", winFrom, winTo)
	}
	block = strings.Replace(block, winFrom, `datetime("`+from.UTC().Format(time.RFC3339)+`")`, 1)
	return strings.Replace(block, winTo, `datetime("`+to.UTC().Format(time.RFC3339)+`")`, 1)
}

// nsWorker runs the test worker in its own mount namespace where the
// host's sandbox var/log is /var/log, so each host has its own
// /var/log/app as a real host does.
func nsWorker(t *testing.T, unshare, mount, varLog string) func() *exec.Cmd {
	inner := testenv.TestWorker(t)
	return func() *exec.Cmd {
		c := inner()
		args := append([]string{"-m", "--propagation", "private", "/bin/sh", "-c", mount + ` --bind "$0" /var/log && exec "$@"`, varLog, c.Path}, c.Args[1:]...)
		w := exec.Command(unshare, args...)
		w.Env = c.Env
		return w
	}
}

// appLog is a host's app.log: 200 lines, of which errors are ERROR lines
// at the end.
func appLog(errors int, oneOff bool) string {
	var b strings.Builder
	for i := range 200 - errors {
		level, msg := "INFO", "GET /health 200"
		if oneOff && i == 100 {
			level, msg = "ERROR", "cache: slow reply (1.2s)"
		}
		fmt.Fprintf(&b, "2026-11-27T01:%02d:%02dZ %s %s\n", i/60, i%60, level, msg)
	}
	for i := range errors {
		fmt.Fprintf(&b, "2026-11-27T01:58:%02dZ ERROR db: connection refused (10.0.4.12:5432)\n", i)
	}
	return b.String()
}

func TestOnCallStory(t *testing.T) {
	unshare, err1 := exec.LookPath("unshare")
	mount, err2 := exec.LookPath("mount")
	if err1 != nil || err2 != nil || exec.Command(unshare, "-m", "--propagation", "private", "true").Run() != nil {
		t.Skip("needs unshare -m (mount namespaces, root): each host's /var/log/app is a bind mount")
	}
	start := time.Now()
	e := newFleetEnvAs(t, "agent-oncall-1", "oncall")
	now := time.Now()
	open := testenv.LoadPolicy(t, e.dir, "web", "", oncallPolicy(t, now.Add(-time.Hour), now.Add(time.Hour)))
	closed := testenv.LoadPolicy(t, e.dir, "api", "", oncallPolicy(t, now.Add(24*time.Hour), now.Add(26*time.Hour)))
	auditPath := filepath.Join(e.dir, "audit.log")
	aw, err := audit.Open(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aw.Close() })

	var names []string
	for i := 1; i <= 30; i++ {
		names = append(names, fmt.Sprintf("web%02d", i))
	}
	for i := 1; i <= 10; i++ {
		names = append(names, fmt.Sprintf("api%02d", i))
	}
	hosts := make([]invHost, len(names))
	sandbox := map[string]string{}
	var wg sync.WaitGroup
	for i, name := range names {
		sb := filepath.Join(e.dir, "hosts", name)
		sandbox[name] = sb
		errs := 0
		if slices.Contains(errorHosts, name) {
			errs = 30
		}
		writeFile(t, filepath.Join(sb, "var", "log", "app", "app.log"), appLog(errs, name == "web03"))
		mgr := filepath.Join(sb, "bin", "svcmgr")
		writeFile(t, mgr, `#!/bin/sh
# a fake service manager: resolves NAME to NAME.service, logs what it does
for last in "$@"; do :; done
[ "$1" = show ] && { echo "$last.service"; exit 0; }
echo "$1 $last" >> `+filepath.Join(sb, "svc.log")+`
echo "$last: $1 done"
`)
		if err := os.Chmod(mgr, 0o755); err != nil {
			t.Fatal(err)
		}
		tier, groups := open, []string{"web"}
		if strings.HasPrefix(name, "api") {
			tier, groups = closed, []string{"api"}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := e.start(t, testenv.HostOptions{Policy: tier, Audit: aw, ServiceManager: []string{mgr},
				Worker: nsWorker(t, unshare, mount, filepath.Join(sb, "var", "log"))})
			hosts[i] = invHost{name, h, groups}
		}()
	}
	wg.Wait()
	inv, _ := e.inventory(t, hosts)
	srv, err := mcpserver.New(mcpserver.Config{Dialer: e.dialer(t), Inventory: inv, Login: "oncall"})
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, srv, nil)
	setup := time.Since(start)

	// The agent.
	var story strings.Builder
	call := func(tool string, args map[string]any) (*mcp.CallToolResult, []byte) {
		t.Helper()
		shown, _ := json.Marshal(args)
		fmt.Fprintf(&story, "→ %s %s\n", tool, shown)
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		b, _ := json.Marshal(res.StructuredContent)
		return res, b
	}

	// 1. The fleet.
	_, b := call("list_hosts", map[string]any{})
	var listed mcpserver.ListHostsOutput
	json.Unmarshal(b, &listed)
	fmt.Fprintf(&story, "← %d hosts; groups %s\n\n", len(listed.Hosts), strings.Join(listed.Groups, ", "))

	// 2. Read the app log everywhere; suspects have repeated errors.
	res, b := call("run_script", map[string]any{"hosts": "all", "script": findScript})
	var found mcpserver.RunScriptOutput
	json.Unmarshal(b, &found)
	fmt.Fprintf(&story, "← isError: %v; %s\n", res.IsError, found.Summary)
	type counts struct {
		Errors int    `json:"errors"`
		Last   string `json:"last"`
	}
	var suspects []string
	quiet := 0
	last := map[string]counts{}
	for _, h := range found.Hosts {
		if h.Outcome != "ok" {
			t.Fatalf("%s: %+v", h.Host, h)
		}
		var c counts
		rb, _ := json.Marshal(h.Result)
		json.Unmarshal(rb, &c)
		if c.Errors > 0 {
			fmt.Fprintf(&story, "  %s: %s\n", h.Host, rb)
		} else {
			quiet++
		}
		if c.Errors >= repeatedErrors {
			suspects = append(suspects, h.Host)
			last[h.Host] = c
		}
	}
	fmt.Fprintf(&story, "  (the other %d hosts: {\"errors\":0,\"last\":null})\n\n", quiet)
	if !slices.Equal(suspects, errorHosts) {
		t.Fatalf("suspects %v, want %v", suspects, errorHosts)
	}

	// 3. Restart app on the suspects.
	res, b = call("run_script", map[string]any{"hosts": suspects, "script": restartScript})
	var restarted mcpserver.RunScriptOutput
	json.Unmarshal(b, &restarted)
	fmt.Fprintf(&story, "← isError: %v; %s\n", res.IsError, restarted.Summary)
	var denied []mcpserver.HostOutput
	done := map[string]bool{}
	for _, h := range restarted.Hosts {
		switch {
		case h.Outcome == "ok" && h.Stdout == "app restarted\n":
			done[h.Host] = true
			fmt.Fprintf(&story, "  %s: %s", h.Host, h.Stdout)
		case h.Error != nil && h.Error.Kind == "ACCESS_DENIED":
			denied = append(denied, h)
			h.DurationMS = 0
			shown, _ := json.MarshalIndent(h, "  ", "  ")
			fmt.Fprintf(&story, "  %s\n", strings.Replace(string(shown), `"duration_ms": 0`, `"duration_ms": …`, 1))
		default:
			t.Fatalf("%s: %+v", h.Host, h)
		}
	}
	fmt.Fprintln(&story)
	if !res.IsError || len(denied) != 1 || denied[0].Host != "api04" || !done["web07"] || !done["web19"] {
		t.Fatalf("restart results %s", b)
	}
	d := denied[0]
	if d.Exit == nil || *d.Exit != 13 || d.Error.Action != "restart" || d.Error.Resource != "app" ||
		!slices.Equal(d.Error.Policies, []string{"restart-only-in-window"}) ||
		len(d.Denied) != 1 || d.Denied[0].Action != "restart" || !slices.Equal(d.Denied[0].Policies, []string{"restart-only-in-window"}) {
		t.Fatalf("the denial as data: %+v %+v", d.Error, d.Denied)
	}

	// 4. Denied: do not retry; collect the evidence for a person.
	evidence := map[string][]string{}
	for _, h := range denied {
		_, b = call("run_script", map[string]any{"hosts": []string{h.Host}, "script": evidenceScript})
		var ev mcpserver.RunScriptOutput
		json.Unmarshal(b, &ev)
		rb, _ := json.Marshal(ev.Hosts[0].Result)
		var lines []string
		json.Unmarshal(rb, &lines)
		evidence[h.Host] = lines
		fmt.Fprintf(&story, "← %s; %s: %d lines\n\n", ev.Summary, h.Host, len(lines))
	}

	// 5. The report.
	fmt.Fprintf(&story, "Report\n%d hosts checked; %d with repeated errors in app.log:\n", len(found.Hosts), len(suspects))
	for _, h := range suspects {
		fmt.Fprintf(&story, "- %s: %d ERROR lines in the last 500, the last: %s\n", h, last[h].Errors, last[h].Last)
		if done[h] {
			fmt.Fprintf(&story, "  restarted app\n")
			continue
		}
		for _, dh := range denied {
			if dh.Host == h {
				fmt.Fprintf(&story, "  NOT restarted: %s %s denied by policy %s; needs a person (the window is closed). Last lines:\n",
					dh.Error.Action, dh.Error.Resource, strings.Join(dh.Error.Policies, ", "))
			}
		}
		for _, l := range evidence[h] {
			fmt.Fprintf(&story, "    %s\n", l)
		}
	}

	// What the hosts did: the fake service manager ran restart on web07
	// and web19 only.
	for _, name := range names {
		got, _ := os.ReadFile(filepath.Join(sandbox[name], "svc.log"))
		want := ""
		if name == "web07" || name == "web19" {
			want = "restart app.service\n"
		}
		if string(got) != want {
			t.Errorf("%s: service manager log %q, want %q", name, got, want)
		}
	}

	// The audit log: one decision line per operation: 40 reads, 3
	// restarts (2 allowed, 1 denied by restart-only-in-window), 1 read.
	aw.Close()
	checkOnCallAudit(t, auditPath)

	// The story in docs/agents.md is this run's.
	checkStoryDoc(t, story.String())
	t.Logf("setup %v, story %v", setup, time.Since(start)-setup)
}

func checkOnCallAudit(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type key struct{ action, resource, decision, policies string }
	got := map[key]int{}
	sessions := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev audit.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if ev.Event == "session.start" {
			sessions[ev.Session] = true
		}
		if ev.Event != "decision" {
			continue
		}
		if ev.User != "agent-oncall-1" || ev.Role != "oncall" {
			t.Errorf("decision of %s in %s", ev.User, ev.Role)
		}
		got[key{ev.Action, ev.Resource, ev.Decision, strings.Join(ev.Policies, ",")}]++
	}
	want := map[key]int{
		{"read", "/var/log/app/app.log", "allow", "read-app-logs"}: 41,
		{"restart", "app", "allow", "restart-app"}:                 2,
		{"restart", "app", "deny", "restart-only-in-window"}:       1,
	}
	if len(got) != len(want) {
		t.Errorf("audit decisions %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("audit: %d decision lines %+v, want %d (all: %v)", got[k], k, n, got)
		}
	}
	if len(sessions) != 40+3+1 {
		t.Errorf("%d sessions, want 44", len(sessions))
	}
}

// checkStoryDoc checks that docs/agents.md shows story between its
// markers; KEYHOLE_UPDATE_DOCS=1 writes it there.
func checkStoryDoc(t *testing.T, story string) {
	t.Helper()
	path := "../../docs/agents.md"
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block := storyBegin + "```text\n" + story + "```\n" + storyEnd
	re := regexp.MustCompile(`(?s)` + regexp.QuoteMeta(storyBegin) + `.*?` + regexp.QuoteMeta(storyEnd))
	if os.Getenv("KEYHOLE_UPDATE_DOCS") == "1" {
		text := string(page)
		if re.MatchString(text) {
			text = re.ReplaceAllLiteralString(text, block)
		} else {
			text = strings.Replace(text, "ONCALL_STORY\n", block, 1)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !strings.Contains(string(page), block) {
		t.Errorf("docs/agents.md does not show this run of the story (KEYHOLE_UPDATE_DOCS=1 rewrites it); the run:\n%s", story)
	}
}
