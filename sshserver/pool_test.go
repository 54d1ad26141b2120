package sshserver_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// waitIdle polls until the pool holds n idle workers that all preloaded
// version, and fails after a generous timeout.
func waitIdle(t *testing.T, e *testenv.Env, n int, version string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v := e.Server.IdleWorkerVersions()
		if len(v) == n && !slices.ContainsFunc(v, func(s string) bool { return s != version }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle workers preloaded %q, want %d of %s", v, n, version)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPoolPreloadFollowsPolicy checks the security property of preloading:
// a session runs with exactly the policy set it started with, even when
// every idle worker preloaded another one (a reload happened in between),
// and its audit lines name that set.
func TestPoolPreloadFollowsPolicy(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Policies: map[string]string{"logs.cedar": logsPolicy}, Files: sandboxFiles})
	plain := filepath.Join(e.Sandbox, "other/plain.txt")
	script := `print(fs.read("` + plain + `"))`
	setA := e.Policy.Current()
	filesB := setA.Files()
	filesB["other.cedar"] = []byte(`@id("other-read") permit (principal, action == Keyhole::Action::"read", resource in Keyhole::Dir::"` + filepath.Dir(plain) + `");`)
	setB, err := authz.LoadFiles(filesB)
	if err != nil {
		t.Fatal(err)
	}

	decisionOf := func(t *testing.T) map[string]any {
		t.Helper()
		var last map[string]any
		for _, ev := range e.Audit(t) {
			if ev["event"] == "decision" && ev["resource"] == plain {
				last = ev
			}
		}
		if last == nil {
			t.Fatal("no decision line")
		}
		return last
	}
	denied := func(t *testing.T, version string) {
		t.Helper()
		r := e.SSH(t, "logs", script)
		if r.Exit != 13 || !strings.Contains(r.Stderr, "ACCESS_DENIED") || strings.Contains(r.Stdout, "not permitted") {
			t.Fatalf("under %s: exit %d stdout %q stderr %q, want a denial", version, r.Exit, r.Stdout, r.Stderr)
		}
		e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "session.end" && ev["policy_version"] == version })
		if d := decisionOf(t); d["decision"] != "deny" || d["policy_version"] != version {
			t.Fatalf("decision line %v, want a deny under %s", d, version)
		}
	}
	allowed := func(t *testing.T, version string) {
		t.Helper()
		r := e.SSH(t, "logs", script)
		if r.Exit != 0 || r.Stdout != "not permitted, not forbidden\n\n" {
			t.Fatalf("under %s: exit %d stdout %q stderr %q, want the file", version, r.Exit, r.Stdout, r.Stderr)
		}
		if d := decisionOf(t); d["decision"] != "allow" || d["policy_version"] != version ||
			!slices.Contains(anyStrings(d["policies"]), "other-read") {
			t.Fatalf("decision line %v, want an allow by other-read under %s", d, version)
		}
	}

	denied(t, setA.Version()) // the first session starts the pool
	waitIdle(t, e, 2, setA.Version())

	// Every idle worker holds set A; a session under B must not run with it.
	e.Policy.Set(setB)
	allowed(t, setB.Version())
	// And back: the pool now holds workers of both versions.
	e.Policy.Set(setA)
	denied(t, setA.Version())
	e.Policy.Set(setB)
	allowed(t, setB.Version())

	// Once refilled after the reload, the pool preloads the new set.
	waitIdle(t, e, 2, setB.Version())
	allowed(t, setB.Version())
}

// TestPoolPreloadMany runs sessions back to back and in parallel through a
// pool whose workers preloaded the set: every one must see the policy.
func TestPoolPreloadMany(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Policies: map[string]string{"logs.cedar": logsPolicy}, Files: sandboxFiles})
	read := `print(fs.read("` + filepath.Join(e.Sandbox, "logs/app.log") + `"))`
	secret := `print(fs.read("` + filepath.Join(e.Sandbox, "secrets/token") + `"))`
	if r := e.SSH(t, "logs", read); r.Exit != 0 {
		t.Fatalf("first session: %+v", r)
	}
	waitIdle(t, e, 2, e.Policy.Current().Version())
	errs := make(chan string, 8)
	for i := range 8 {
		go func() {
			script, wantExit := read, 0
			if i%2 == 1 {
				script, wantExit = secret, 13
			}
			r := e.SSH(t, "logs", script)
			switch {
			case r.Exit != wantExit:
				errs <- "exit " + r.Stderr
			case wantExit == 0 && r.Stdout != "line one\nline two\n\n":
				errs <- "stdout " + r.Stdout
			case strings.Contains(r.Stdout, "TOPSECRET"):
				errs <- "secret printed"
			default:
				errs <- ""
			}
		}()
	}
	for range 8 {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
	if b, err := os.ReadFile(e.AuditPath); err != nil || strings.Count(string(b), `"event":"session.end"`) != 9 {
		// Each session's end line is written after its client has its
		// exit status; wait for all nine.
		e.WaitAudit(t, func(map[string]any) bool {
			b, _ := os.ReadFile(e.AuditPath)
			return strings.Count(string(b), `"event":"session.end"`) == 9
		})
	}
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, s := range l {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}
