package sshserver_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// syslogSocket is a unix datagram socket standing in for /dev/log; lines
// gets the audit line of each message.
type syslogSocket struct {
	path  string
	conn  *net.UnixConn
	lines chan audit.Event
}

func listenSyslogSocket(t *testing.T, path string) *syslogSocket {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &syslogSocket{path: path, conn: c, lines: make(chan audit.Event, 1000)}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			_, line, _ := strings.Cut(string(buf[:n]), audit.SyslogTag+"[")
			_, line, _ = strings.Cut(line, "]: ")
			var e audit.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Errorf("syslog message %q: %v", buf[:n], err)
				continue
			}
			s.lines <- e
		}
	}()
	t.Cleanup(func() { c.Close() })
	return s
}

// gone closes the socket and removes it, as a stopped daemon leaves it.
func (s *syslogSocket) gone(t *testing.T) {
	t.Helper()
	s.conn.Close()
	if err := os.Remove(s.path); err != nil {
		t.Fatal(err)
	}
}

// next returns the next audit line received.
func (s *syslogSocket) next(t *testing.T) audit.Event {
	t.Helper()
	select {
	case e := <-s.lines:
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no syslog message")
	}
	return audit.Event{}
}

// TestAuditToSyslog runs the server with its audit log on a syslog
// socket: a session's lines arrive one message each; with the socket
// gone, a new connection is refused (audit fails closed) and nothing is
// read; with a daemon back, the first message is audit.resumed and
// sessions are served again.
func TestAuditToSyslog(t *testing.T) {
	t.Parallel()
	testenv.NeedBinary(t, "ssh")
	path := filepath.Join(t.TempDir(), "log")
	sock := listenSyslogSocket(t, path)
	w, err := audit.OpenSyslog("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	e := testenv.Start(t, testenv.Options{
		Policies:    map[string]string{"logs.cedar": logsPolicy},
		Files:       sandboxFiles,
		AuditWriter: w,
	})
	script := `print(fs.read("` + e.Sandbox + `/logs/app.log"))`
	res := e.SSH(t, "logs", script)
	if res.Exit != 0 || res.Stdout != "line one\nline two\n\n" {
		t.Fatalf("exit %d stdout %q stderr %q", res.Exit, res.Stdout, res.Stderr)
	}
	var got []string
	for _, want := range []string{"session.start", "decision", "session.end"} {
		ev := sock.next(t)
		got = append(got, ev.Event)
		if ev.Event != want {
			t.Fatalf("syslog lines %v, want session.start, decision, session.end", got)
		}
	}

	// The socket gone: the next session's session.start line fails and
	// the session is refused with the reason (-v: the client logs it only
	// at that level); after that, authentication is refused.
	sock.gone(t)
	res = e.SSH(t, "logs", "-v", script)
	if res.Exit != 255 || res.Stdout != "" || !strings.Contains(res.Stderr, "audit log unwritable, session refused") {
		t.Fatalf("with syslog gone: exit %d stdout %q stderr %q", res.Exit, res.Stdout, res.Stderr)
	}
	res = e.SSH(t, "logs", script)
	if res.Exit != 255 || res.Stdout != "" || !strings.Contains(res.Stderr, "Permission denied") {
		t.Fatalf("with syslog gone, again: exit %d stdout %q stderr %q", res.Exit, res.Stdout, res.Stderr)
	}

	sock = listenSyslogSocket(t, path)
	res = e.SSH(t, "logs", script)
	if res.Exit != 0 {
		t.Fatalf("with syslog back: exit %d stderr %q", res.Exit, res.Stderr)
	}
	if ev := sock.next(t); ev.Event != audit.Resumed {
		t.Fatalf("first line after the outage: %+v", ev)
	}
	for _, want := range []string{"session.start", "decision", "session.end"} {
		if ev := sock.next(t); ev.Event != want {
			t.Fatalf("after the outage: %+v, want %s", ev, want)
		}
	}
}
