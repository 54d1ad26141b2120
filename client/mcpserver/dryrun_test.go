package mcpserver_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/client/mcpserver"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

const changePolicy = `@id("out-write")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"write", Keyhole::Action::"create"],
        resource in Keyhole::Dir::"{{SANDBOX}}/out");
@id("restart-app")
permit (principal in Keyhole::Role::"logs", action == Keyhole::Action::"restart", resource == Keyhole::Service::"app");
@id("no-db")
forbid (principal, action == Keyhole::Action::"restart", resource == Keyhole::Service::"db");`

// dry_run: true runs the script changing nothing: the file is not
// written, the service manager not asked to restart, every operation is
// listed with its decision, and every audit line says dry_run. The same
// call without dry_run does change the host.
func TestRunScriptDryRun(t *testing.T) {
	e := newFleetEnv(t, "logs")
	sb := filepath.Join(e.dir, "sandbox")
	writeFile(t, filepath.Join(sb, "out", ".keep"), "")
	mgr := filepath.Join(sb, "bin", "svcmgr")
	svcLog := filepath.Join(sb, "svc.log")
	writeFile(t, mgr, "#!/bin/sh\nfor last in \"$@\"; do :; done\n[ \"$1\" = show ] && { echo \"$last.service\"; exit 0; }\necho \"$1 $last\" >> "+svcLog+"\n")
	if err := os.Chmod(mgr, 0o755); err != nil {
		t.Fatal(err)
	}
	mem := &audit.Memory{}
	h := e.start(t, testenv.HostOptions{Policy: testenv.LoadPolicy(t, e.dir, "change", sb, changePolicy), Audit: mem, ServiceManager: []string{mgr}})
	inv, _ := e.inventory(t, []invHost{{"web01", h, []string{"web"}}})
	srv, err := mcpserver.New(mcpserver.Config{Dialer: e.dialer(t), Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, srv, nil)
	out := filepath.Join(sb, "out", "motd")
	script := `fs.write(args["p"], "new motd\n")
svc.restart("app")
_, err = catch(svc.restart, "db")
print(host.dry_run, err.policies[0])
`
	res, o := callRun(t, cs, map[string]any{"hosts": "web", "script": script, "args": map[string]any{"p": out}, "dry_run": true})
	hr := o.Hosts[0]
	if res.IsError || hr.Outcome != "ok" || !hr.DryRun || hr.Stdout != "True no-db\n" {
		t.Fatalf("dry run: %s", resultText(res))
	}
	want := []mcpserver.Operation{
		{Action: "create", Resource: out, Allow: true, Policies: []string{"out-write"}},
		{Action: "restart", Resource: "app", Allow: true, Policies: []string{"restart-app"}},
		{Action: "restart", Resource: "db", Allow: false, Policies: []string{"no-db"}},
	}
	if len(hr.Operations) != len(want) {
		t.Fatalf("operations %+v", hr.Operations)
	}
	for i, op := range hr.Operations {
		if op.Action != want[i].Action || op.Resource != want[i].Resource || op.Allow != want[i].Allow || !slices.Equal(op.Policies, want[i].Policies) {
			t.Errorf("operation %d: %+v, want %+v", i, op, want[i])
		}
	}
	if len(hr.Denied) != 1 || hr.Denied[0].Resource != "db" {
		t.Errorf("denied %+v", hr.Denied)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a dry run wrote %s: %v", out, err)
	}
	if _, err := os.Stat(svcLog); !os.IsNotExist(err) {
		t.Errorf("a dry run asked the service manager to act: %v", err)
	}
	decisions := 0
	for _, ev := range mem.Events() {
		if ev.Event == "decision" {
			decisions++
			if !ev.DryRun {
				t.Errorf("a decision of the dry run without dry_run: %+v", ev)
			}
		}
	}
	if decisions != 3 {
		t.Errorf("%d decision lines, want 3", decisions)
	}

	// The same call, for real.
	res, o = callRun(t, cs, map[string]any{"hosts": "web", "script": script, "args": map[string]any{"p": out}})
	if hr := o.Hosts[0]; res.IsError || hr.DryRun || hr.Operations != nil || hr.Stdout != "False no-db\n" {
		t.Fatalf("real run: %s", resultText(res))
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "new motd\n" {
		t.Errorf("the real run wrote %q, %v", b, err)
	}
	if b, err := os.ReadFile(svcLog); err != nil || string(b) != "restart app.service\n" {
		t.Errorf("the real run's service manager log %q, %v", b, err)
	}
}
