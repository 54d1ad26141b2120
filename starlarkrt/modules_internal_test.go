package starlarkrt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/hostops"
)

// Every module but fs's has its script here, run against a real
// hostops.Host on a sandbox with Cedar policies.
var moduleScripts = []string{"proc.star", "svc.star", "host.star", "allowed.star", "json.star", "args.star", "result.star"}

func init() {
	for _, f := range moduleScripts {
		realHostScripts[f] = true // not run by TestScripts with the fake host
	}
}

// modSandbox is the tree the module scripts run on, under root:
//
//	allowed/a.txt "alpha\n", allowed/link-secret -> ../denied/secret
//	denied/secret
//	bin/hello (prints "hello" and its arguments), bin/other, bin/marker
//	(creates allowed/ran), bin/link -> hello, bin/svcmgr (a fake service
//	manager logging its actions to allowed/svc.log; it resolves a name
//	with a suffix to itself, any other to NAME.service)
type modSandbox struct {
	root, bin, sh string
	policy        map[string][]byte
}

func newModSandbox(t testing.TB) *modSandbox {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &modSandbox{root: root, bin: filepath.Join(root, "bin")}
	if s.sh, err = filepath.EvalSymlinks("/bin/sh"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"allowed", "denied", "bin"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	log := filepath.Join(root, "allowed/svc.log")
	for name, data := range map[string]string{
		"allowed/a.txt":   "alpha\n",
		"allowed/svc.log": "",
		"denied/secret":   "s3cret\n",
		"bin/hello":       "#!/bin/sh\necho hello \"$@\"\n",
		"bin/other":       "#!/bin/sh\necho other\n",
		"bin/marker":      "#!/bin/sh\n: > " + filepath.Join(root, "allowed/ran") + "\n",
		"bin/svcmgr": `#!/bin/sh
for last in "$@"; do :; done
[ "$1" = show ] && case "$last" in
*.*) echo "$last"; exit 0 ;;
*) echo "$last.service"; exit 0 ;;
esac
for a in "$@"; do printf '%s\n' "$a" >> ` + log + `; done
echo --end >> ` + log + `
case "$last" in
broken.service) echo "Job for broken.service failed." >&2; exit 1 ;;
web.service) echo "active (running)"; exit 0 ;;
esac
[ "$1" = status ] && { echo "inactive (dead)"; exit 3; }
exit 0
`,
	} {
		must(t, os.WriteFile(filepath.Join(root, name), []byte(data), 0o755))
	}
	must(t, os.Symlink("hello", filepath.Join(s.bin, "link")))
	must(t, os.Symlink("../denied/secret", filepath.Join(root, "allowed/link-secret")))
	cat, err := filepath.EvalSymlinks("/usr/bin/cat")
	if err != nil {
		t.Fatal(err)
	}
	s.policy = map[string][]byte{"modules.cedar": []byte(fmt.Sprintf(`
@id("sandbox-files")
permit (principal in Keyhole::Role::"ops",
        action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat", Keyhole::Action::"write"],
        resource in Keyhole::Dir::%[1]q);
@id("no-denied")
forbid (principal, action, resource in Keyhole::Dir::%[2]q);
@id("facts")
permit (principal, action == Keyhole::Action::"read", resource)
  when { resource.path like "/proc/sys/kernel/*" || ["/proc/uptime", "/proc/loadavg", "/proc/meminfo"].contains(resource.path) };
@id("programs")
permit (principal, action == Keyhole::Action::"exec", resource)
  when { [%[3]q, %[4]q, %[5]q].contains(resource.path) };
@id("no-evil")
forbid (principal, action == Keyhole::Action::"exec", resource) when { context.args.contains("--evil") };
@id("web-ops")
permit (principal, action in [Keyhole::Action::"status", Keyhole::Action::"start", Keyhole::Action::"stop",
                              Keyhole::Action::"restart", Keyhole::Action::"reload"], resource)
  when { ["web", "idle", "broken", "getty@tty1"].contains(resource.name) };
@id("db-status")
permit (principal, action == Keyhole::Action::"status", resource == Keyhole::Service::"db");
@id("no-db-stop")
forbid (principal, action == Keyhole::Action::"stop", resource == Keyhole::Service::"db");
`, root+"/allowed", root+"/denied", filepath.Join(s.bin, "hello"), cat, s.sh))}
	return s
}

// host returns a Host for the sandbox's policy, auditing to mem.
func (s *modSandbox) host(t testing.TB, mem *audit.Memory) *hostops.Host {
	h := realHost(t, s.policy, mem)
	h.ServiceManager = []string{filepath.Join(s.bin, "svcmgr")}
	h.MaxExecOutput = 1024
	return h
}

// scriptArgs are the arguments args.star expects, as the worker decodes
// them (numbers as json.Number).
func scriptArgs() map[string]any {
	return map[string]any{
		"name": "web", "count": jsonNumber("3"), "ratio": jsonNumber("0.5"), "on": true, "none": nil,
		"tags":   []any{"a", "b"},
		"nested": map[string]any{"k": []any{jsonNumber("1"), map[string]any{"x": "y"}}},
	}
}

func jsonNumber(s string) json.Number { return json.Number(s) }

func runModuleScript(t *testing.T, s *modSandbox, h *hostops.Host, file string) Result {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	assert, opts := assertModule(t, Options{Host: h, Stdout: &out, Args: scriptArgs()})
	res := run1(context.Background(), file, string(src), opts,
		starlark.StringDict{
			"assert": assert,
			"ROOT":   starlark.String(s.root),
			"BIN":    starlark.String(s.bin),
			"SH":     starlark.String(s.sh),
			"denied": deniedModules(t, s),
			"struct_value": starlarkstruct.FromStringDict(starlark.String("st"), starlark.StringDict{
				"n": starlark.MakeInt(1), "s": starlark.String("x")}),
		})
	if res.Exit != 0 {
		t.Fatalf("exit %d: %v\noutput:\n%s", res.Exit, res.Err, out.String())
	}
	return res
}

// deniedModules is the predeclared "denied": the host module bound to a
// Host of the same sandbox whose policy forbids everything.
func deniedModules(t testing.TB, s *modSandbox) *starlarkstruct.Module {
	h := realHost(t, map[string][]byte{"deny.cedar": []byte(`@id("deny-all") forbid (principal, action, resource);`)}, &audit.Memory{})
	r := &run{opts: Options{Host: h}}
	return &starlarkstruct.Module{Name: "denied", Members: starlark.StringDict{"host": hostModule(r)}}
}

func TestModuleScripts(t *testing.T) {
	for _, file := range moduleScripts {
		t.Run(file, func(t *testing.T) {
			s := newModSandbox(t)
			mem := &audit.Memory{}
			res := runModuleScript(t, s, s.host(t, mem), file)
			denied := filepath.Join(s.root, "denied")
			for _, e := range mem.Events() {
				if e.Event != audit.Decision {
					t.Errorf("unexpected event %+v", e)
				}
				if e.Decision == "allow" && strings.HasPrefix(e.Resource, denied) {
					t.Errorf("allowed %s %s", e.Action, e.Resource)
				}
				e.Argv = "" // the vector decided on is recorded there, and only there
				if strings.Contains(fmt.Sprint(e), "--evil") {
					t.Errorf("an argument is in the audit log: %+v", e)
				}
			}
			switch file {
			case "result.star":
				want := map[string]any{"hosts": []any{"a", "b"}, "ok": true, "n": int64(3),
					"stat": map[string]any{"n": int64(1), "s": "x"}}
				if !reflect.DeepEqual(res.Value, want) {
					t.Errorf("Result.Value = %#v, want %#v", res.Value, want)
				}
			case "proc.star":
				if _, err := os.Stat(filepath.Join(s.root, "allowed/ran")); err == nil {
					t.Errorf("a denied program ran")
				}
			}
		})
	}
}

// TestModuleScriptsCoverEveryBuiltin: proc.star, svc.star and host.star
// call each builtin of their module in an allowed case and a denied one;
// allowed.star has allowed() answer True and False.
func TestModuleScriptsCoverEveryBuiltin(t *testing.T) {
	r := &run{}
	for _, m := range []*starlarkstruct.Module{procModule(r), svcModule(r), hostModule(r)} {
		src, err := os.ReadFile(filepath.Join("testdata", m.Name+".star"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for name, v := range m.Members {
			if _, ok := v.(*starlark.Builtin); ok { // host.dry_run is a value
				names = append(names, name)
			}
		}
		sort.Strings(names)
		if missing := moduleCoverage(m.Name, names, string(src)); len(missing) > 0 {
			t.Errorf("testdata/%s.star lacks cases: %s", m.Name, strings.Join(missing, ", "))
		}
	}
	src, err := os.ReadFile("testdata/allowed.star")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"), True)", "), False)"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("testdata/allowed.star has no allowed(...) == %s", want)
		}
	}
}

// moduleCoverage returns the builtins of module that script does not call
// both in an allowed case (a line calling it that expects no error) and
// in a denied one (a line calling it that names ACCESS_DENIED, or a
// catch() of it followed by a check of ACCESS_DENIED on the next line).
func moduleCoverage(module string, names []string, script string) (missing []string) {
	lines := strings.Split(script, "\n")
	for _, name := range names {
		call := regexp.MustCompile(`\b` + module + `\.` + name + `\(|catch\(` + module + `\.` + name + `\b`)
		var allowed, denied bool
		for i, line := range lines {
			if !call.MatchString(line) {
				continue
			}
			next := ""
			if i+1 < len(lines) {
				next = lines[i+1]
			}
			switch {
			case strings.Contains(line, "ACCESS_DENIED"),
				strings.Contains(line, "catch(") && strings.Contains(next, `"ACCESS_DENIED"`):
				denied = true
			case !strings.Contains(line, "fails(") && !strings.Contains(line, "catch("):
				allowed = true
			}
		}
		if !allowed || !denied {
			missing = append(missing, module+"."+name)
		}
	}
	return missing
}

func TestModuleCoverageCanFail(t *testing.T) {
	script := "r = proc.run([\"x\"])\n"
	if got := moduleCoverage("proc", []string{"run"}, script); len(got) != 1 {
		t.Fatalf("coverage of a script without a denied case = %v, want [proc.run]", got)
	}
}

// TestProcStopsWithScript: the script's wall-clock limit ends a running
// program, and its process group with it.
func TestProcStopsWithScript(t *testing.T) {
	s := newModSandbox(t)
	h := s.host(t, &audit.Memory{})
	pidfile := filepath.Join(s.root, "allowed/pid")
	src := fmt.Sprintf(`proc.run([%q, "-c", "sleep 1000 & echo $! > %s; wait"], timeout=3600)`, s.sh, pidfile)
	res := Run(context.Background(), "t.star", src, Options{Host: h, MaxWall: 500 * time.Millisecond})
	if res.Exit != ExitLimitExceeded || res.Err == nil || !strings.Contains(res.Err.Message, "wall-clock") {
		t.Fatalf("result = %+v, want the wall-clock limit", res)
	}
	data, err := os.ReadFile(pidfile)
	if err != nil {
		t.Skipf("the program did not start within the limit on this busy machine: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && len(stat) > i+2 && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still running after the script ended", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProcDryRun(t *testing.T) {
	s := newModSandbox(t)
	mem := &audit.Memory{}
	h := s.host(t, mem)
	h.DryRun = true
	src := fmt.Sprintf(`
assert.eq(host.dry_run, True)
r = proc.run([%q])
assert.eq([r.exit, r.stdout, r.stderr], [0, "", ""])
assert.fails(lambda: proc.run([%q]), "ACCESS_DENIED")
assert.eq(svc.restart("web").exit, 0)
`, filepath.Join(s.bin, "hello"), filepath.Join(s.bin, "marker"))
	assert, opts := assertModule(t, Options{Host: h})
	res := run1(context.Background(), "t.star", src, opts, starlark.StringDict{"assert": assert})
	if res.Exit != 0 {
		t.Fatalf("exit %d: %v", res.Exit, res.Err)
	}
	if log, _ := os.ReadFile(filepath.Join(s.root, "allowed/svc.log")); len(log) != 0 {
		t.Errorf("dry run ran the service manager: %q", log)
	}
	if n := len(mem.Events()); n != 3 {
		t.Errorf("%d audit events, want 3", n)
	}
}

// TestArgsRefusedBeforeStart: arguments that cannot be converted stop the
// script before it runs anything.
func TestArgsRefusedBeforeStart(t *testing.T) {
	deep := any("leaf")
	for range MaxJSONDepth + 1 {
		deep = []any{deep}
	}
	for _, tc := range []struct {
		name string
		args map[string]any
		msg  string
	}{
		{"too-deep", map[string]any{"x": deep}, "nested deeper than 100"},
		{"not-json", map[string]any{"x": struct{}{}}, "unsupported value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			res := Run(context.Background(), "t.star", `print("ran")`, Options{Host: testHost(), Stdout: &out, Args: tc.args})
			if res.Exit != ExitScriptError || res.Err == nil || res.Err.Kind != hostops.KindInvalidArgument || !strings.Contains(res.Err.Message, tc.msg) {
				t.Fatalf("result = %+v, want INVALID_ARGUMENT %q", res.Err, tc.msg)
			}
			if out.Len() != 0 {
				t.Fatalf("the script ran: %q", out.String())
			}
		})
	}
}

// TestResultKeptOnError: the value set before a failure is kept.
func TestResultKeptOnError(t *testing.T) {
	res := Run(context.Background(), "t.star", `result([1, "two"])
result({"last": "wins"})
fail("boom")`, Options{Host: testHost()})
	if res.Exit != ExitScriptError || !reflect.DeepEqual(res.Value, map[string]any{"last": "wins"}) {
		t.Fatalf("result = exit %d, value %#v", res.Exit, res.Value)
	}
	if res := Run(context.Background(), "t.star", `x = 1`, Options{Host: testHost()}); res.Value != nil {
		t.Fatalf("value without result() = %#v, want nil", res.Value)
	}
}

// The interfaces the modules use are all implemented by *hostops.Host.
var _ Host = (*hostops.Host)(nil)

// TestJSONDecodeStopsWithScript: a long decode ends with the script's
// wall-clock limit instead of running past it.
func TestJSONDecodeStopsWithScript(t *testing.T) {
	res := Run(context.Background(), "t.star", `x = json.decode("[" + "1," * 5000000 + "1]")`,
		Options{Host: testHost(), MaxWall: 100 * time.Millisecond})
	if res.Exit != ExitLimitExceeded || !strings.Contains(res.Err.Message, "wall-clock") {
		t.Fatalf("result = %+v, want the wall-clock limit", res.Err)
	}
}

func TestJSONEncodeRefusesInvalidUTF8(t *testing.T) {
	b := starlark.NewBuiltin("json.encode", nil)
	for _, v := range []starlark.Value{starlark.String("\xff"), starlark.NewList([]starlark.Value{starlark.String("a\xc0")})} {
		if _, err := encodeJSON(b, v); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("encode(%q) = %v, want not valid UTF-8", v, err)
		}
	}
	d := starlark.NewDict(1)
	d.SetKey(starlark.String("\xff"), starlark.None)
	if _, err := encodeJSON(b, d); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Errorf("encode of a dict with an invalid key = %v", err)
	}
}
