package sshserver_test

import (
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/sshserver"
)

// TestScriptMustArrive checks that a subsystem session whose client never
// sends its script (no EOF on stdin, no request line) ends after the login
// grace time with LIMIT_EXCEEDED and an audit line, instead of holding its
// session slot forever.
func TestScriptMustArrive(t *testing.T) {
	e := startEnv(t, sshserver.Limits{LoginGrace: time.Second})
	c := dial(t, e, "logs")
	for _, sub := range []string{"starlark", "keyhole"} {
		t.Run(sub, func(t *testing.T) {
			ch, reqs, err := c.OpenChannel("session", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			ok, err := ch.SendRequest("subsystem", true, gossh.Marshal(struct{ Name string }{sub}))
			if err != nil || !ok {
				t.Fatalf("subsystem refused: %v", err)
			}
			// Half a script, then silence.
			if _, err := ch.Write([]byte(`{"script": "print(1)`)); err != nil {
				t.Fatal(err)
			}
			exit := make(chan int, 1)
			go func() {
				code := -1
				for r := range reqs {
					if r.Type == "exit-status" && len(r.Payload) == 4 {
						code = int(r.Payload[3])
					}
				}
				exit <- code
			}()
			var stderr strings.Builder
			done := make(chan struct{})
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := ch.Stderr().Read(buf)
					stderr.Write(buf[:n])
					if err != nil {
						close(done)
						return
					}
				}
			}()
			select {
			case code := <-exit:
				<-done
				if code != 124 || !strings.Contains(stderr.String(), "script not received within 1s") {
					t.Errorf("exit %d stderr %q", code, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("session still open long after the login grace time")
			}
			e.WaitAudit(t, func(ev map[string]any) bool {
				return ev["event"] == "request.refused" && ev["request"] == "subsystem "+sub &&
					strings.Contains(ev["reason"].(string), "script not received")
			})
		})
	}
	stillServes(t, e)
}
