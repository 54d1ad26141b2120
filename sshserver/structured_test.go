package sshserver_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// structured sends request on subsystem keyhole, keeping stdin open (the
// server must start on the line, not at the end of input), and returns the
// JSON lines and the exit status.
func structured(t *testing.T, e *testenv.Env, request string) ([]map[string]any, int) {
	t.Helper()
	c := dial(t, e, "logs")
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ok, err := ch.SendRequest("subsystem", true, gossh.Marshal(struct{ Name string }{"keyhole"}))
	if err != nil || !ok {
		t.Fatalf("subsystem keyhole refused: %v", err)
	}
	exit := make(chan int, 1)
	go func() {
		code := -1
		for r := range reqs {
			if r.Type == "exit-status" && len(r.Payload) == 4 {
				code = int(binary.BigEndian.Uint32(r.Payload))
			}
		}
		exit <- code
	}()
	go func() { _, _ = io.WriteString(ch, request) }()
	go func() { _, _ = io.Copy(io.Discard, ch.Stderr()) }()
	var lines []map[string]any
	sc := bufio.NewScanner(ch)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	ch.Close()
	return lines, <-exit
}

func TestStructuredRoundTrip(t *testing.T) {
	e := startEnv(t, sshserver.Limits{})
	sb := e.Sandbox
	script := fmt.Sprintf(`print("start")
v, err = catch(fs.read, %q)
print(err.kind)
data = fs.read(%q)
print("a\nb")
`, sb+"/secrets/token", sb+"/logs/app.log")
	req, _ := json.Marshal(map[string]any{"script": script, "args": map[string]any{"n": 1}})
	lines, exit := structured(t, e, string(req)+"\n")
	if exit != 0 {
		t.Fatalf("exit %d, lines %v", exit, lines)
	}
	want := []string{
		`{"print":"start"}`,
		fmt.Sprintf(`{"decision":{"action":"read","allow":false,"policies":["no-secrets"],"resource":%q}}`, sb+"/secrets/token"),
		`{"print":"ACCESS_DENIED"}`,
		fmt.Sprintf(`{"decision":{"action":"read","allow":true,"policies":["logs-read"],"resource":%q}}`, sb+"/logs/app.log"),
		`{"print":"a\nb"}`,
	}
	if len(lines) != len(want)+1 {
		t.Fatalf("got %d lines: %v", len(lines), lines)
	}
	for i, w := range want {
		got, _ := json.Marshal(lines[i])
		if string(got) != w {
			t.Errorf("line %d = %s, want %s", i, got, w)
		}
	}
	end := lines[len(lines)-1]
	stats, _ := end["stats"].(map[string]any)
	if end["exit"] != float64(0) || end["error"] != nil || end["result"] != nil || stats == nil ||
		stats["allowed"] != float64(1) || stats["denied"] != float64(1) || stats["steps"].(float64) <= 0 ||
		stats["bytes_read"] != float64(len("line one\nline two\n")) {
		t.Errorf("end line %v", end)
	}
	for _, k := range []string{"duration_ms", "bytes_written"} {
		if _, ok := stats[k]; !ok {
			t.Errorf("stats lack %s: %v", k, stats)
		}
	}
	stillServes(t, e)
}

// TestStructuredOrder: decisions and prints stream in the order the
// script made them, also when a script runs long enough between prints
// for the server to take its decisions while it computes, and when it
// makes more decisions between two prints than the worker's ring holds.
func TestStructuredOrder(t *testing.T) {
	e := startEnv(t, sshserver.Limits{MaxSteps: 1 << 40})
	log, secret := e.Sandbox+"/logs/app.log", e.Sandbox+"/secrets/token"
	script := fmt.Sprintf(`
def spin():
    for i in range(1000000):
        pass

for i in range(20):
    fs.stat(%[1]q)
    print(str(i))
    if i %% 5 == 0:
        spin()
    catch(fs.read, %[2]q)
    if i %% 7 == 0:
        spin()
for i in range(20000):
    fs.stat(%[1]q)
print("end")
`, log, secret)
	req, _ := json.Marshal(map[string]any{"script": script})
	lines, exit := structured(t, e, string(req)+"\n")
	if exit != 0 {
		t.Fatalf("exit %d, last line %v", exit, lines[len(lines)-1])
	}
	var want, got []string
	for i := range 20 {
		want = append(want, "stat "+log, fmt.Sprint("print ", i), "read "+secret)
	}
	for range 20000 {
		want = append(want, "stat "+log)
	}
	want = append(want, "print end")
	for _, l := range lines[:len(lines)-1] {
		if d, ok := l["decision"].(map[string]any); ok {
			got = append(got, fmt.Sprint(d["action"], " ", d["resource"]))
		} else {
			got = append(got, fmt.Sprint("print ", l["print"]))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestStructuredScriptError(t *testing.T) {
	e := startEnv(t, sshserver.Limits{})
	req, _ := json.Marshal(map[string]any{"script": fmt.Sprintf("fs.read(%q)", e.Sandbox+"/secrets/token")})
	lines, exit := structured(t, e, string(req)+"\n")
	if exit != 13 || len(lines) != 2 {
		t.Fatalf("exit %d lines %v", exit, lines)
	}
	end := lines[1]
	errObj, _ := end["error"].(map[string]any)
	if end["exit"] != float64(13) || errObj == nil || errObj["kind"] != "ACCESS_DENIED" || errObj["action"] != "read" ||
		errObj["resource"] != e.Sandbox+"/secrets/token" || fmt.Sprint(errObj["policies"]) != "[no-secrets]" {
		t.Errorf("end line %v", end)
	}
}

// TestStructuredBadRequests sends malformed request lines: each gets an
// end line with an error and an exit status, is audited as refused, runs
// nothing, and the server serves the next client.
func TestStructuredBadRequests(t *testing.T) {
	e := startEnv(t, sshserver.Limits{MaxScript: 1000})
	tests := []struct {
		name     string
		request  string
		wantExit int
		wantKind string
		wantMsg  string
	}{
		{"not-json", "print(1)\n", 1, "INVALID_ARGUMENT", "not a JSON object"},
		{"missing-script", `{"args": {}}` + "\n", 1, "INVALID_ARGUMENT", `missing "script"`},
		{"script-not-string", `{"script": 5}` + "\n", 1, "INVALID_ARGUMENT", "not a JSON object"},
		{"args-not-object", `{"script": "print(1)", "args": [1, 2]}` + "\n", 1, "INVALID_ARGUMENT", `"args" must be a JSON object`},
		{"args-string", `{"script": "print(1)", "args": "x"}` + "\n", 1, "INVALID_ARGUMENT", `"args" must be a JSON object`},
		{"unknown-field", `{"script": "print(1)", "shell": "sh"}` + "\n", 1, "INVALID_ARGUMENT", `unknown field "shell"`},
		// Keys are exact: encoding/json alone runs print(2) for the first
		// two, which a case-sensitive gateway in front would not see.
		{"key-case-variant", `{"script": "print(1)", "Script": "print(2)"}` + "\n", 1, "INVALID_ARGUMENT", `unknown field "Script"`},
		{"key-only-case-variant", `{"SCRIPT": "print(2)"}` + "\n", 1, "INVALID_ARGUMENT", `unknown field "SCRIPT"`},
		{"key-unicode-fold", `{"ſcript": "print(2)"}` + "\n", 1, "INVALID_ARGUMENT", "unknown field"},
		{"duplicate-key", `{"script": "print(1)", "script": "print(2)"}` + "\n", 1, "INVALID_ARGUMENT", `duplicate key "script"`},
		{"duplicate-args", `{"script": "print(1)", "args": {}, "args": {"a": 1}}` + "\n", 1, "INVALID_ARGUMENT", `duplicate key "args"`},
		{"duplicate-key-in-args", `{"script": "print(1)", "args": {"a": 1, "b": [{"c": 1}], "a": 2}}` + "\n", 1, "INVALID_ARGUMENT", `duplicate key "a"`},
		{"duplicate-key-nested", `{"script": "print(1)", "args": {"a": [{"c": 1, "c": 2}]}}` + "\n", 1, "INVALID_ARGUMENT", `duplicate key "c"`},
		{"two-objects", `{"script": "print(1)"} {"script": "print(2)"}` + "\n", 1, "INVALID_ARGUMENT", "data after"},
		{"empty-line", "\n", 1, "INVALID_ARGUMENT", "empty request line"},
		{"huge-line", `{"script": "` + strings.Repeat("x", 3<<20) + `"}` + "\n", 124, "LIMIT_EXCEEDED", "request line longer than"},
		{"script-over-cap", `{"script": "` + strings.Repeat("#", 1500) + `"}` + "\n", 124, "LIMIT_EXCEEDED", "script larger than 1000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.Audit(t))
			lines, exit := structured(t, e, tt.request)
			if exit != tt.wantExit || len(lines) != 1 {
				t.Fatalf("exit %d lines %v", exit, lines)
			}
			errObj, _ := lines[0]["error"].(map[string]any)
			if lines[0]["exit"] != float64(tt.wantExit) || errObj == nil || errObj["kind"] != tt.wantKind ||
				!strings.Contains(fmt.Sprint(errObj["message"]), tt.wantMsg) {
				t.Errorf("end line %v", lines[0])
			}
			end := e.WaitAudit(t, func(ev map[string]any) bool {
				return ev["event"] == "session.end" && ev["exit"] == float64(tt.wantExit) && isAfter(e.Audit(t), ev, before)
			})
			refused := false
			for _, ev := range e.Audit(t)[before:] {
				if ev["session"] != end["session"] {
					continue
				}
				if ev["event"] == "decision" {
					t.Errorf("a refused request ran: %v", ev)
				}
				if ev["event"] == "request.refused" && ev["request"] == "subsystem keyhole" {
					refused = true
				}
			}
			if !refused && tt.name != "script-over-cap" {
				t.Errorf("no request.refused line for the session")
			}
		})
	}
	stillServes(t, e)
}

func TestStructuredArgsReachScript(t *testing.T) {
	e := startEnv(t, sshserver.Limits{})
	// Keys that differ in case are distinct arguments, and equal keys in
	// different objects are no duplicates.
	req := `{"script": "print(args[\"name\"], args[\"n\"] + 1, args[\"N\"], len(args[\"l\"]))", "args": {"name": "web", "n": 41, "N": 0, "l": [{"k": 1}, {"k": 2}]}}` + "\n"
	lines, exit := structured(t, e, req)
	if exit != 0 || len(lines) != 2 || lines[0]["print"] != "web 42 0 2" {
		t.Fatalf("exit %d lines %v", exit, lines)
	}
}

// isAfter reports whether ev is among events[from:].
func isAfter(events []map[string]any, ev map[string]any, from int) bool {
	for _, x := range events[from:] {
		if x["session"] == ev["session"] && x["event"] == ev["event"] && x["time"] == ev["time"] {
			return true
		}
	}
	return false
}

// TestREADMEStructuredExample runs the structured-protocol example of
// README.md with the stock client, as the README shows it (the request on
// stdin of "ssh -s … keyhole"), and checks that the real output has the
// README's lines: the same lines in the same order, the same keys in the
// same order, and the same values, except the numbers of "stats".
func TestREADMEStructuredExample(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var request string
	var want []string
	inExample := false
	for _, line := range strings.Split(string(readme), "\n") {
		switch {
		case strings.HasPrefix(line, "$ echo '") && strings.HasSuffix(line, "' | ssh -s logs@host keyhole"):
			request = strings.TrimSuffix(strings.TrimPrefix(line, "$ echo '"), "' | ssh -s logs@host keyhole")
			inExample = true
		case inExample && strings.HasPrefix(line, "```"):
			inExample = false
		case inExample:
			want = append(want, line)
		}
	}
	if request == "" || len(want) == 0 {
		t.Fatal("README.md has no structured-protocol example")
	}
	e := startEnv(t, sshserver.Limits{})
	dir := e.Sandbox + "/logs" // the README's /var/log/app
	request = strings.ReplaceAll(request, "/var/log/app", dir)
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
		t.Fatalf("got %d lines, README shows %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		w := jsonTokens(t, strings.ReplaceAll(want[i], "/var/log/app", dir))
		g := jsonTokens(t, got[i])
		if strings.Join(g, " ") != strings.Join(w, " ") {
			t.Errorf("line %d:\n got    %s\n README %s", i+1, got[i], want[i])
		}
	}
}

// jsonTokens lists the tokens of a JSON line in order, with the numbers
// inside "stats" replaced by "N" (they vary from run to run).
func jsonTokens(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var toks []string
	inStats := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return toks
		}
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		switch v := tok.(type) {
		case string:
			if v == "stats" {
				inStats = 1
			}
		case json.Number:
			if inStats > 1 {
				tok = "N"
			}
		case json.Delim:
			if inStats > 0 && (v == '{' || v == '[') {
				inStats++
			} else if inStats > 0 && (v == '}' || v == ']') {
				inStats--
			}
		}
		toks = append(toks, fmt.Sprint(tok))
	}
}
