package sshserver_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

const logsPolicy = `
@id("logs-read")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::"{{SANDBOX}}/logs");

@id("no-secrets")
forbid (principal, action, resource in Keyhole::Dir::"{{SANDBOX}}/secrets");
`

var sandboxFiles = map[string]string{
	"logs/app.log":      "line one\nline two\n",
	"logs/sub/deep.log": "deep\n",
	"secrets/token":     "TOPSECRET-4f1c\n",
	"other/plain.txt":   "not permitted, not forbidden\n",
}

func startEnv(t *testing.T, limits sshserver.Limits) *testenv.Env {
	t.Helper()
	e := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"logs.cedar": logsPolicy},
		Files:    sandboxFiles,
		Limits:   limits,
	})
	// A symlink inside the readable directory pointing at the secret, and
	// one pointing at a readable file.
	if err := os.Symlink(filepath.Join(e.Sandbox, "secrets/token"), filepath.Join(e.Sandbox, "logs/token-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(e.Sandbox, "logs/app.log"), filepath.Join(e.Sandbox, "other/app-link")); err != nil {
		t.Fatal(err)
	}
	return e
}

func decisions(events []map[string]any) []map[string]any {
	var out []map[string]any
	for _, ev := range events {
		if ev["event"] == "decision" {
			out = append(out, ev)
		}
	}
	return out
}

func TestStockSSHScripts(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	e := startEnv(t, sshserver.Limits{})
	sb := e.Sandbox
	tests := []struct {
		name       string
		login      string
		script     string
		wantExit   int
		wantStdout string
		wantStderr string // regexp-free substring
		// wantDecisions lists "action resource decision" for every
		// decision line the script must produce, in order.
		wantDecisions []string
	}{
		{
			name: "allowed-read", login: "logs",
			script:        fmt.Sprintf(`print(fs.read(%q))`, sb+"/logs/app.log"),
			wantStdout:    "line one\nline two\n\n",
			wantDecisions: []string{"read " + sb + "/logs/app.log allow"},
		},
		{
			name: "forbidden-read", login: "logs",
			script:        fmt.Sprintf(`print(fs.read(%q))`, sb+"/secrets/token"),
			wantExit:      13,
			wantStderr:    `ACCESS_DENIED: read ` + sb + `/secrets/token denied for User::"agent-7" in Role::"logs" (policy no-secrets)`,
			wantDecisions: []string{"read " + sb + "/secrets/token deny"},
		},
		{
			name: "default-deny", login: "logs",
			script:        fmt.Sprintf(`print(fs.read(%q))`, sb+"/other/plain.txt"),
			wantExit:      13,
			wantStderr:    "ACCESS_DENIED: read " + sb + "/other/plain.txt denied",
			wantDecisions: []string{"read " + sb + "/other/plain.txt deny"},
		},
		{
			name: "dotdot-escape", login: "logs",
			script:        fmt.Sprintf(`print(fs.read(%q))`, sb+"/logs/../secrets/token"),
			wantExit:      13,
			wantStderr:    "ACCESS_DENIED",
			wantDecisions: []string{"read " + sb + "/secrets/token deny"},
		},
		{
			name: "symlink-to-forbidden", login: "logs",
			script:        fmt.Sprintf(`print(fs.read(%q))`, sb+"/logs/token-link"),
			wantExit:      13,
			wantStderr:    "(policy no-secrets)",
			wantDecisions: []string{"read " + sb + "/secrets/token deny"},
		},
		{
			name: "symlink-from-elsewhere-to-allowed", login: "logs",
			script:        fmt.Sprintf(`print(fs.read(%q))`, sb+"/other/app-link"),
			wantStdout:    "line one\nline two\n\n",
			wantDecisions: []string{"read " + sb + "/logs/app.log allow"},
		},
		{
			name: "role-is-the-login-name", login: "deploy",
			script:        fmt.Sprintf(`print(fs.read(%q))`, sb+"/logs/app.log"),
			wantExit:      13,
			wantStderr:    "(no policy permits it)",
			wantDecisions: []string{"read " + sb + "/logs/app.log deny"},
		},
		{
			name: "list-and-stat", login: "logs",
			script: fmt.Sprintf(`
for e in fs.list(%q):
    print(e.name, e.type)
print(fs.stat(%q).size)`, sb+"/logs", sb+"/logs/app.log"),
			wantStdout:    "app.log file\nsub dir\ntoken-link symlink\n18\n",
			wantDecisions: []string{"list " + sb + "/logs allow", "stat " + sb + "/logs/app.log allow"},
		},
		{
			name: "catch-a-denial-and-adapt", login: "logs",
			script: fmt.Sprintf(`
v, err = catch(fs.read, %q)
print(err.kind, err.policies)
print(len(fs.read(%q)))`, sb+"/secrets/token", sb+"/logs/app.log"),
			wantStdout:    "ACCESS_DENIED [\"no-secrets\"]\n18\n",
			wantDecisions: []string{"read " + sb + "/secrets/token deny", "read " + sb + "/logs/app.log allow"},
		},
		{
			name: "not-found-under-allowed", login: "logs",
			script:        fmt.Sprintf(`fs.read(%q)`, sb+"/logs/missing.log"),
			wantExit:      1,
			wantStderr:    "NOT_FOUND",
			wantDecisions: []string{"read " + sb + "/logs/missing.log allow"},
		},
		{
			name: "not-found-under-forbidden-is-denied", login: "logs",
			script:        fmt.Sprintf(`fs.read(%q)`, sb+"/secrets/missing"),
			wantExit:      13,
			wantStderr:    "ACCESS_DENIED",
			wantDecisions: []string{"read " + sb + "/secrets/missing deny"},
		},
		{
			name: "relative-path", login: "logs",
			script:     `fs.read("logs/app.log")`,
			wantExit:   1,
			wantStderr: "INVALID_ARGUMENT",
			// A refused call is still an operation: it is audited.
			wantDecisions: []string{"read logs/app.log deny"},
		},
		{
			name: "syntax-error", login: "logs",
			script:     `print(`,
			wantExit:   2,
			wantStderr: "SYNTAX_ERROR",
		},
		{
			name: "script-error", login: "logs",
			script:     `print(1 // 0)`,
			wantExit:   1,
			wantStderr: "SCRIPT_ERROR",
		},
		{
			name: "load-is-off", login: "logs",
			script:     `load("x.star", "y")`,
			wantExit:   2,
			wantStderr: "SYNTAX_ERROR",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.Audit(t))
			res := e.SSH(t, tc.login, tc.script)
			if res.Exit != tc.wantExit {
				t.Errorf("exit = %d, want %d\nstdout: %s\nstderr: %s", res.Exit, tc.wantExit, res.Stdout, res.Stderr)
			}
			if tc.wantStdout != "" || tc.wantExit == 0 {
				if res.Stdout != tc.wantStdout {
					t.Errorf("stdout = %q, want %q", res.Stdout, tc.wantStdout)
				}
			}
			if !strings.Contains(res.Stderr, tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", res.Stderr, tc.wantStderr)
			}
			if strings.Contains(res.Stdout+res.Stderr, "TOPSECRET") {
				t.Errorf("secret content leaked: %q %q", res.Stdout, res.Stderr)
			}
			// The session's end line is written after the client got its
			// exit status: wait for it, then count the decisions.
			e.WaitAudit(t, func(ev map[string]any) bool {
				return ev["event"] == "session.end" && countEnds(e.Audit(t)[before:]) > 0
			})
			var got []string
			for _, d := range decisions(e.Audit(t)[before:]) {
				got = append(got, fmt.Sprintf("%s %s %s", d["action"], d["resource"], d["decision"]))
			}
			if strings.Join(got, "\n") != strings.Join(tc.wantDecisions, "\n") {
				t.Errorf("decision lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.wantDecisions, "\n"))
			}
		})
	}
}

func countEnds(events []map[string]any) int {
	n := 0
	for _, ev := range events {
		if ev["event"] == "session.end" {
			n++
		}
	}
	return n
}
