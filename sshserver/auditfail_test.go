package sshserver_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/sshserver"
)

const writePolicy = logsPolicy + `
@id("out-write")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"write", Keyhole::Action::"create"],
        resource in Keyhole::Dir::"{{SANDBOX}}/out");
`

// auditErrors counts the server log's error lines about the audit log.
func auditErrors(hook *logtest.Hook) int {
	n := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.ErrorLevel && strings.Contains(e.Message, "audit log unwritable") {
			n++
		}
	}
	return n
}

// TestAuditLogFullRefusesEverything runs the server with its audit log on
// /dev/full: the first session cannot write its session.start line and
// ends INTERNAL before any script runs; after that, authentication itself
// is refused, checked again on every attempt. Nothing is written to the
// host.
func TestAuditLogFullRefusesEverything(t *testing.T) {
	t.Parallel()
	testenv.NeedBinary(t, "ssh")
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	log, hook := logtest.NewNullLogger()
	e := testenv.Start(t, testenv.Options{
		Policies:  map[string]string{"p.cedar": writePolicy},
		Files:     map[string]string{"out/.keep": ""},
		AuditPath: "/dev/full",
		Log:       log,
	})
	target := filepath.Join(e.Sandbox, "out", "new.txt")
	script := fmt.Sprintf(`fs.write(%q, "x"); print("written")`, target)

	// The log is not known to be broken yet: the session's session.start
	// line is tried, fails, and the session is refused with the reason.
	c := dial(t, e, "logs")
	if _, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "audit log unwritable, session refused") {
		t.Fatalf("first session: %v", err)
	}
	// Broken now: another session on the same connection is refused when
	// it is opened, with the reason.
	if _, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "audit log unwritable, session refused") {
		t.Fatalf("second session: %v", err)
	}
	c.Close()

	// And a new connection does not authenticate (stock ssh, twice: the
	// log is tried again for each).
	for i := 0; i < 2; i++ {
		res := e.SSH(t, "logs", script)
		if res.Exit != 255 || !strings.Contains(res.Stderr, "Permission denied") || res.Stdout != "" {
			t.Fatalf("ssh #%d: exit %d stdout %q stderr %q", i, res.Exit, res.Stdout, res.Stderr)
		}
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("%s was written: %v", target, err)
	}
	if n := auditErrors(hook); n != 1 {
		t.Errorf("%d error lines about the audit log in the server log, want 1 for the outage", n)
	}
}

// TestAuditLogRemovedMidRun removes the audit log's directory while a
// session is open: the script's first operation cannot be recorded, so it
// does not happen (no data read leaves, no file is written) and the
// session ends INTERNAL; new sessions are refused until the directory is
// back, and then served again without a restart, after an audit.resumed
// line. A script that goes on computing after a read whose line could not
// be written is stopped then, not at its wall-clock limit.
func TestAuditLogRemovedMidRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, script, want string
	}{
		{"read", `print(fs.read("{{SANDBOX}}/logs/app.log"))`, "read {{SANDBOX}}/logs/app.log"},
		{"cat", `fs.cat("{{SANDBOX}}/logs/app.log")`, "read {{SANDBOX}}/logs/app.log"},
		{"list", `print(fs.list("{{SANDBOX}}/logs"))`, "list {{SANDBOX}}/logs"},
		{"write", `fs.write("{{SANDBOX}}/out/new.txt", "x"); print("written")`, "create {{SANDBOX}}/out/new.txt"},
		{"caught-write", `print(catch(fs.write, "{{SANDBOX}}/out/new.txt", "x"))`, "create {{SANDBOX}}/out/new.txt"},
		{"read-then-compute", "data = fs.read(\"{{SANDBOX}}/logs/app.log\")\nwhile True: pass\nprint(data)", "read {{SANDBOX}}/logs/app.log"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "log")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			log, hook := logtest.NewNullLogger()
			e := testenv.Start(t, testenv.Options{
				Policies:  map[string]string{"p.cedar": writePolicy},
				Files:     map[string]string{"logs/app.log": "SECRET-LINE\n", "out/.keep": ""},
				AuditPath: filepath.Join(dir, "audit.jsonl"),
				Log:       log,
				Limits:    sshserver.Limits{MaxWall: 2 * time.Minute, MaxSteps: 1 << 50},
			})
			sub := func(s string) string { return strings.ReplaceAll(s, "{{SANDBOX}}", e.Sandbox) }

			c := dial(t, e, "logs")
			defer c.Close()
			s, err := c.NewSession() // its session.start line is written
			if err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr strings.Builder
			s.Stdout, s.Stderr = &stdout, &stderr
			start := time.Now()
			err = s.Run(sub(tc.script))
			if took := time.Since(start); took > time.Minute {
				t.Errorf("the session ended after %s, at its wall-clock limit", took)
			}
			var ee *gossh.ExitError
			want := "INTERNAL: audit log unwritable, " + sub(tc.want) + " not performed\n"
			if !asExit(err, &ee) || ee.ExitStatus() != 125 || stdout.Len() > 0 || stderr.String() != want {
				t.Fatalf("err %v stdout %q stderr %q, want exit 125 and %q", err, stdout.String(), stderr.String(), want)
			}
			if _, err := os.Stat(sub("{{SANDBOX}}/out/new.txt")); !os.IsNotExist(err) {
				t.Fatalf("the write happened: %v", err)
			}

			// Refused while the directory is gone: a session on the open
			// connection, and a new connection's authentication.
			if _, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "audit log unwritable, session refused") {
				t.Fatalf("session while broken: %v", err)
			}
			if c2, err := gossh.Dial("tcp", e.Addr, e.ClientConfig("logs", e.UserSigner(t))); err == nil {
				c2.Close()
				t.Fatal("authenticated while the audit log is unwritable")
			}

			// Back: served again, no restart.
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			out, errOut, exit := runXC(t, e, sub(`print(fs.read("{{SANDBOX}}/logs/app.log"))`))
			if exit != 0 || out != "SECRET-LINE\n\n" {
				t.Fatalf("after the log is back: exit %d stdout %q stderr %q", exit, out, errOut)
			}
			evs := e.Audit(t)
			if len(evs) == 0 || evs[0]["event"] != "audit.resumed" || !strings.Contains(fmt.Sprint(evs[0]["reason"]), "not written") {
				t.Fatalf("the new log does not start with audit.resumed: %v", evs)
			}
			if d := decisions(evs); len(d) != 1 || d[0]["action"] != "read" || d[0]["decision"] != "allow" {
				t.Errorf("decisions after the outage: %v", d)
			}
			if n := auditErrors(hook); n != 1 {
				t.Errorf("%d error lines about the audit log in the server log, want 1", n)
			}
		})
	}
}

// TestRefusedKeyLongLoginNameCapped: a refused key writes the client's
// login name (the role asked for) to the audit log; a 200 KB name is cut
// to its cap with a marker, whoever wrote the line.
func TestRefusedKeyLongLoginNameCapped(t *testing.T) {
	t.Parallel()
	e := startEnv(t, sshserver.Limits{})
	signer, _, err := keys.GenerateKey() // not certified: refused
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("n", 200_000)
	if c, err := gossh.Dial("tcp", e.Addr, e.ClientConfig(name, signer)); err == nil {
		c.Close()
		t.Fatal("an unknown key authenticated")
	}
	ev := e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "auth.refused" })
	role, _ := ev["role"].(string)
	if role != strings.Repeat("n", 1024)+"…[truncated 198976 bytes]" {
		t.Fatalf("role is %d bytes: %.80q…", len(role), role)
	}
	if fi, err := os.Stat(e.AuditPath); err != nil || fi.Size() > 8<<10 {
		t.Fatalf("audit log: %v, %v", fi.Size(), err)
	}
}
