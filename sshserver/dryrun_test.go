package sshserver_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// dryEnv is a server whose policy lets role logs change anything below
// out/, run the marker program and act on service "web", through a fake
// service manager that records every call but its name lookups. The
// marker program leaves the file ran/marker.
func dryEnv(t *testing.T) (e *testenv.Env, marker, managerLog, other string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	managerLog = filepath.Join(dir, "manager.log")
	manager := filepath.Join(dir, "fake-systemctl")
	mustWriteFile(t, manager, "#!/bin/sh\nfor last in \"$@\"; do :; done\n"+
		"[ \"$1\" = show ] && { echo \"$last.service\"; exit 0; }\n"+
		"printf '%s ' \"$@\" >> "+managerLog+"\necho >> "+managerLog+"\necho active\n", 0o755)
	marker = filepath.Join(dir, "marker")
	mustWriteFile(t, marker, "#!/bin/sh\n: > "+filepath.Join(dir, "ran")+"\n", 0o755)
	other = filepath.Join(dir, "other")
	mustWriteFile(t, other, "#!/bin/sh\n: > "+filepath.Join(dir, "ran")+"\n", 0o755)
	e = testenv.Start(t, testenv.Options{
		Policies: map[string]string{
			"logs.cedar": logsPolicy,
			"out.cedar": `@id("app-write") permit (principal in Keyhole::Role::"logs",
	action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat",
		Keyhole::Action::"write", Keyhole::Action::"create", Keyhole::Action::"delete",
		Keyhole::Action::"mkdir", Keyhole::Action::"rename", Keyhole::Action::"chmod"],
	resource in Keyhole::Dir::"{{SANDBOX}}/out");
@id("marker") permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::"` + marker + `");
@id("web") permit (principal, action in [Keyhole::Action::"status", Keyhole::Action::"start",
	Keyhole::Action::"stop", Keyhole::Action::"restart", Keyhole::Action::"reload"],
	resource == Keyhole::Service::"web");`,
		},
		Files: map[string]string{
			"logs/app.log":   "line one\nline two\n",
			"secrets/token":  "TOPSECRET\n",
			"out/append.txt": "old\n",
			"out/remove.txt": "old\n",
			"out/move.txt":   "old\n",
			"out/chmod.txt":  "old\n",
			"out/src.txt":    "source\n",
		},
		ServiceManager: []string{manager},
	})
	return e, marker, managerLog, other
}

func mustWriteFile(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// hostState is everything a script could change: the sandbox tree (names,
// modes, contents), whether the marker program ran, and the service
// manager's record.
func hostState(t *testing.T, e *testenv.Env, marker, managerLog string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(e.Sandbox, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s", strings.TrimPrefix(p, e.Sandbox), fi.Mode())
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(marker), "ran")); err == nil {
		b.WriteString("the marker program ran\n")
	}
	calls, _ := os.ReadFile(managerLog)
	b.WriteString("manager: " + string(calls))
	return b.String()
}

// sessionAudit waits for the session.end line of the session that began
// after the first before lines, and returns that session's lines.
func sessionAudit(t *testing.T, e *testenv.Env, before int) []map[string]any {
	t.Helper()
	end := e.WaitAudit(t, func(ev map[string]any) bool {
		return ev["event"] == "session.end" && isAfter(e.Audit(t), ev, before)
	})
	var out []map[string]any
	for _, ev := range e.Audit(t)[before:] {
		if ev["session"] == end["session"] {
			out = append(out, ev)
		}
	}
	return out
}

// TestStructuredDryRun runs every builtin that changes the host over the
// structured subsystem with "dry_run": true: allowed, it succeeds and
// changes nothing (no file, no program, no service manager action), each
// of its operations has its decision line marked dry_run, and so do the
// decision events the client gets and the end line; denied, it is
// ACCESS_DENIED, as in a real run. Each allowed script is then run for
// real, to show that the check would see its change. Reads in a dry run
// return their data.
func TestStructuredDryRun(t *testing.T) {
	e, marker, managerLog, other := dryEnv(t)
	out, secret := e.Sandbox+"/out", e.Sandbox+"/secrets/token"
	cases := []struct {
		name, allowed, denied string
		actions               []string // the actions of the allowed script's decision lines
	}{
		{"fs.write", fmt.Sprintf(`fs.write(%q, "new")`, out+"/new.txt"), fmt.Sprintf(`fs.write(%q, "x")`, secret), []string{"create"}},
		{"fs.write-existing", fmt.Sprintf(`fs.write(%q, "new")`, out+"/append.txt"), fmt.Sprintf(`fs.write(%q, "x")`, secret), []string{"write"}},
		{"fs.append", fmt.Sprintf(`fs.append(%q, "more")`, out+"/append.txt"), fmt.Sprintf(`fs.append(%q, "x")`, secret), []string{"write"}},
		{"fs.mkdir", fmt.Sprintf(`fs.mkdir(%q)`, out+"/d"), fmt.Sprintf(`fs.mkdir(%q)`, e.Sandbox+"/secrets/d"), []string{"mkdir"}},
		{"fs.mkdir-parents", fmt.Sprintf(`fs.mkdir(%q, parents=True)`, out+"/a/b"), fmt.Sprintf(`fs.mkdir(%q, parents=True)`, e.Sandbox+"/secrets/a/b"), []string{"mkdir", "mkdir"}},
		{"fs.remove", fmt.Sprintf(`fs.remove(%q)`, out+"/remove.txt"), fmt.Sprintf(`fs.remove(%q)`, secret), []string{"delete"}},
		{"fs.rename", fmt.Sprintf(`fs.rename(%q, %q)`, out+"/move.txt", out+"/moved.txt"), fmt.Sprintf(`fs.rename(%q, %q)`, secret, out+"/stolen"), []string{"rename", "create"}},
		{"fs.chmod", fmt.Sprintf(`fs.chmod(%q, 0o600)`, out+"/chmod.txt"), fmt.Sprintf(`fs.chmod(%q, 0o644)`, secret), []string{"chmod"}},
		{"fs.copy", fmt.Sprintf(`fs.copy(%q, %q)`, out+"/src.txt", out+"/copy.txt"), fmt.Sprintf(`fs.copy(%q, %q)`, out+"/src.txt", e.Sandbox+"/secrets/copy"), []string{"read", "create"}},
		{"proc.run", fmt.Sprintf(`r = proc.run([%q]); result([r.exit, r.stdout, r.path])`, marker), fmt.Sprintf(`proc.run([%q])`, other), []string{"exec"}},
		{"svc.start", `svc.start("web")`, `svc.start("db")`, []string{"start"}},
		{"svc.stop", `svc.stop("web")`, `svc.stop("db")`, []string{"stop"}},
		{"svc.restart", `r = svc.restart("web"); result([r.name, r.action, r.exit])`, `svc.restart("db")`, []string{"restart"}},
		{"svc.reload", `svc.reload("web")`, `svc.reload("db")`, []string{"reload"}},
	}
	request := func(script string, dry bool) string {
		m := map[string]any{"script": script}
		if dry {
			m["dry_run"] = true
		}
		b, _ := json.Marshal(m)
		return string(b) + "\n"
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Allowed, dry: nothing changes.
			before, state := len(e.Audit(t)), hostState(t, e, marker, managerLog)
			lines, exit := structured(t, e, request(tc.allowed, true))
			if exit != 0 {
				t.Fatalf("dry run: exit %d, lines %v", exit, lines)
			}
			if after := hostState(t, e, marker, managerLog); after != state {
				t.Fatalf("a dry run changed the host:\nbefore:\n%s\nafter:\n%s", state, after)
			}
			end := lines[len(lines)-1]
			if stats, _ := end["stats"].(map[string]any); stats["dry_run"] != true {
				t.Errorf("end line %v does not say dry_run", end)
			}
			var events, dryEvents []string
			for _, l := range lines[:len(lines)-1] {
				if d, ok := l["decision"].(map[string]any); ok && d["allow"] == true {
					events = append(events, fmt.Sprint(d["action"]))
					dryEvents = append(dryEvents, fmt.Sprint(d["action"], " ", d["resource"], " ", d["allow"], " ", d["policies"]))
				}
			}
			if strings.Join(events, " ") != strings.Join(tc.actions, " ") {
				t.Errorf("allowed decision events %q, want %q", events, tc.actions)
			}
			checkDryAudit(t, sessionAudit(t, e, before), tc.actions, "allow")
			if tc.name == "proc.run" && fmt.Sprint(end["result"]) != fmt.Sprintf("[0  %s]", marker) {
				t.Errorf("dry proc.run result %v, want exit 0, no output, the program's path", end["result"])
			}
			if tc.name == "svc.restart" && fmt.Sprint(end["result"]) != "[web restart 0]" {
				t.Errorf("dry svc.restart result %v", end["result"])
			}

			// Denied, dry: ACCESS_DENIED, as in a real run, and nothing changes.
			before = len(e.Audit(t))
			lines, exit = structured(t, e, request(tc.denied, true))
			errObj, _ := lines[len(lines)-1]["error"].(map[string]any)
			if exit != 13 || errObj["kind"] != "ACCESS_DENIED" {
				t.Errorf("denied dry run: exit %d, end line %v", exit, lines[len(lines)-1])
			}
			if after := hostState(t, e, marker, managerLog); after != state {
				t.Fatalf("a denied dry run changed the host:\n%s", after)
			}
			audit := sessionAudit(t, e, before)
			if d := decisionLines(audit); len(d) == 0 || d[len(d)-1]["decision"] != "deny" || d[len(d)-1]["dry_run"] != true {
				t.Errorf("denied dry run: decision lines %v, want the last a deny marked dry_run", d)
			}

			// Allowed, real: the same script changes the host, and its
			// lines do not say dry_run.
			before = len(e.Audit(t))
			lines, exit = structured(t, e, request(tc.allowed, false))
			if exit != 0 {
				t.Fatalf("real run: exit %d, lines %v", exit, lines)
			}
			if hostState(t, e, marker, managerLog) == state {
				t.Error("the real run changed nothing: the dry run's check cannot fail")
			}
			var real []string
			for _, l := range lines[:len(lines)-1] {
				if d, ok := l["decision"].(map[string]any); ok {
					real = append(real, fmt.Sprint(d["action"], " ", d["resource"], " ", d["allow"], " ", d["policies"]))
				}
			}
			if strings.Join(real, "|") != strings.Join(dryEvents, "|") {
				t.Errorf("a real run decided %q, the dry run %q", real, dryEvents)
			}
			for _, ev := range sessionAudit(t, e, before) {
				if _, ok := ev["dry_run"]; ok {
					t.Errorf("a real run's line says dry_run: %v", ev)
				}
			}
			if stats, _ := lines[len(lines)-1]["stats"].(map[string]any); stats["dry_run"] != nil {
				t.Errorf("a real run's end line says dry_run: %v", lines[len(lines)-1])
			}
			_ = os.Remove(filepath.Join(filepath.Dir(marker), "ran"))
		})
	}
	stillServes(t, e)
}

// checkDryAudit checks a dry-run session's audit lines: its decision
// lines have the actions given, each with decision, and every line after
// session.start (written before the request is read) says dry_run.
func checkDryAudit(t *testing.T, lines []map[string]any, actions []string, decision string) {
	t.Helper()
	var got []string
	for _, ev := range lines {
		if ev["event"] == "session.start" {
			continue
		}
		if ev["dry_run"] != true {
			t.Errorf("%s line without dry_run: %v", ev["event"], ev)
		}
		if ev["event"] == "decision" {
			if ev["decision"] != decision {
				t.Errorf("decision line %v, want %s", ev, decision)
			}
			got = append(got, fmt.Sprint(ev["action"]))
		}
	}
	if strings.Join(got, " ") != strings.Join(actions, " ") {
		t.Errorf("decision lines %q, want %q", got, actions)
	}
}

func decisionLines(lines []map[string]any) []map[string]any {
	var out []map[string]any
	for _, ev := range lines {
		if ev["event"] == "decision" {
			out = append(out, ev)
		}
	}
	return out
}

// TestStructuredDryRunReads: in a dry run reads return their data,
// allowed() answers as in a real run, svc.status runs (it only asks), and
// the script can tell it is a dry run.
func TestStructuredDryRunReads(t *testing.T) {
	e, marker, managerLog, _ := dryEnv(t)
	log, out := e.Sandbox+"/logs/app.log", e.Sandbox+"/out"
	script := fmt.Sprintf(`
result({
    "dry_run": host.dry_run,
    "read": fs.read(%[1]q),
    "lines": fs.lines(%[1]q),
    "tail": fs.tail(%[1]q, 1),
    "grep": fs.grep(%[1]q, "two"),
    "list": len(fs.list(%[2]q)) > 0,
    "glob": fs.glob(%[2]q + "/*.log"),
    "stat": fs.stat(%[1]q).size,
    "exists": fs.exists(%[1]q),
    "allowed": [allowed("write", %[3]q), allowed("write", %[1]q)],
    "status": svc.status("web").exit,
})`, log, e.Sandbox+"/logs", out+"/x")
	req, _ := json.Marshal(map[string]any{"script": script, "dry_run": true})
	state := hostState(t, e, marker, managerLog)
	lines, exit := structured(t, e, string(req)+"\n")
	if exit != 0 {
		t.Fatalf("exit %d, lines %v", exit, lines)
	}
	got, _ := json.Marshal(lines[len(lines)-1]["result"])
	want := fmt.Sprintf(`{"allowed":[true,false],"dry_run":true,"exists":true,"glob":[%q],"grep":[{"line":2,"text":"line two"}],"lines":["line one","line two"],"list":true,"read":"line one\nline two\n","stat":18,"status":0,"tail":["line two"]}`,
		log)
	if string(got) != want {
		t.Errorf("result\n %s\nwant\n %s", got, want)
	}
	if after := hostState(t, e, marker, managerLog); !strings.Contains(after, "manager: status -- web.service") ||
		strings.Replace(after, "status -- web.service \n", "", 1) != state {
		t.Errorf("a dry run's reads changed the host, or status did not run:\n%s", after)
	}
}

// TestStructuredDryRunBadValue: a "dry_run" that is not true or false is
// refused with a clear error and a request.refused line, runs nothing,
// and the server serves the next client.
func TestStructuredDryRunBadValue(t *testing.T) {
	e, marker, managerLog, _ := dryEnv(t)
	write := fmt.Sprintf(`fs.write(%q, "x")`, e.Sandbox+"/out/bad.txt")
	for _, v := range []string{`"yes"`, `"true"`, `1`, `0`, `null`, `[]`, `{}`, `"` + strings.Repeat("y", 100) + `"`} {
		t.Run(v[:min(len(v), 8)], func(t *testing.T) {
			state, before := hostState(t, e, marker, managerLog), len(e.Audit(t))
			lines, exit := structured(t, e, fmt.Sprintf(`{"script": %q, "dry_run": %s}`+"\n", write, v))
			errObj, _ := lines[len(lines)-1]["error"].(map[string]any)
			msg := fmt.Sprint(errObj["message"])
			if exit != 1 || len(lines) != 1 || errObj["kind"] != "INVALID_ARGUMENT" ||
				!strings.HasPrefix(msg, `request: "dry_run" must be true or false, got `) || len(msg) > 100 {
				t.Fatalf("exit %d, lines %v", exit, lines)
			}
			if hostState(t, e, marker, managerLog) != state {
				t.Fatal("a refused request changed the host")
			}
			refused := false
			for _, ev := range sessionAudit(t, e, before) {
				switch ev["event"] {
				case "decision":
					t.Errorf("a refused request ran: %v", ev)
				case "request.refused":
					refused = ev["reason"] == msg
				}
			}
			if !refused {
				t.Error("no request.refused line with the error")
			}
		})
	}
	// The key is exact, and given once.
	for _, req := range []string{`{"script": "print(1)", "Dry_Run": true}`, `{"script": "print(1)", "dry_run": true, "dry_run": false}`} {
		lines, exit := structured(t, e, req+"\n")
		if exit != 1 || len(lines) != 1 {
			t.Errorf("%s: exit %d, lines %v", req, exit, lines)
		}
	}
	stillServes(t, e)
}

// TestDryRunOnlyStructured: an exec command cannot ask for a dry run; a
// script sent as the command runs for real, and so does a structured
// request whose arguments hold a "dry_run".
func TestDryRunOnlyStructured(t *testing.T) {
	e, marker, managerLog, _ := dryEnv(t)
	state := hostState(t, e, marker, managerLog)
	res := e.SSH(t, "logs", fmt.Sprintf(`fs.write(%q, "x"); print(host.dry_run)`, e.Sandbox+"/out/exec.txt"))
	if res.Exit != 0 || res.Stdout != "False\n" || hostState(t, e, marker, managerLog) == state {
		t.Fatalf("exec: exit %d, stdout %q, stderr %q", res.Exit, res.Stdout, res.Stderr)
	}
	// A "dry_run" among the arguments is an argument, not the request's.
	state = hostState(t, e, marker, managerLog)
	lines, exit := structured(t, e, fmt.Sprintf(`{"script": %q, "args": {"dry_run": true}}`+"\n",
		fmt.Sprintf(`fs.write(%q, "y"); print(host.dry_run, args["dry_run"])`, e.Sandbox+"/out/args.txt")))
	if exit != 0 || len(lines) != 3 || lines[1]["print"] != "False True" || hostState(t, e, marker, managerLog) == state {
		t.Fatalf("args.dry_run: exit %d, lines %v", exit, lines)
	}
}

// TestScriptsDocDryRunExample runs the dry-run example of docs/scripts.md
// with the stock client, as the document shows it, and checks that the
// real output has its lines (the numbers of "stats" aside) and that the
// file it would write is not there.
func TestScriptsDocDryRunExample(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	doc, err := os.ReadFile(filepath.Join("..", "docs", "scripts.md"))
	if err != nil {
		t.Fatal(err)
	}
	const suffix = "' | ssh -s logs@host keyhole"
	var request string
	var want []string
	inExample := false
	for _, line := range strings.Split(string(doc), "\n") {
		switch {
		case strings.HasPrefix(line, "$ echo '") && strings.HasSuffix(line, suffix) && strings.Contains(line, `"dry_run": true`):
			request = strings.TrimSuffix(strings.TrimPrefix(line, "$ echo '"), suffix)
			inExample = true
		case inExample && strings.HasPrefix(line, "```"):
			inExample = false
		case inExample:
			want = append(want, line)
		}
	}
	if request == "" || len(want) == 0 {
		t.Fatal("docs/scripts.md has no dry-run example")
	}
	e, marker, managerLog, _ := dryEnv(t)
	dir := e.Sandbox + "/out" // the example's /var/lib/app
	request = strings.ReplaceAll(request, "/var/lib/app", dir)
	state := hostState(t, e, marker, managerLog)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := testenv.SSHCommand(ctx, e.KnownHosts, e.Addr, "logs", e.UserKey, e.UserCert, "-s", "keyhole")
	cmd.Stdin = strings.NewReader(request + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d lines, docs/scripts.md shows %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		w := jsonTokens(t, strings.ReplaceAll(want[i], "/var/lib/app", dir))
		g := jsonTokens(t, got[i])
		if strings.Join(g, " ") != strings.Join(w, " ") {
			t.Errorf("line %d:\n got  %s\n docs %s", i+1, got[i], want[i])
		}
	}
	if hostState(t, e, marker, managerLog) != state {
		t.Error("the example's dry run changed the host")
	}
}
