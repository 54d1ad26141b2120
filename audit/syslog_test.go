package audit_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
)

// syslogd is a unix datagram socket standing in for /dev/log.
type syslogd struct {
	path string
	conn *net.UnixConn
}

func listenSyslog(t *testing.T, path string) *syslogd {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &syslogd{path: path, conn: c}
}

// next returns the next message's priority and audit line.
func (d *syslogd) next(t *testing.T) (string, audit.Event) {
	t.Helper()
	buf := make([]byte, 64<<10)
	_ = d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := d.conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	msg := string(buf[:n])
	// <pri>timestamp tag[pid]: line
	pri, rest, ok := strings.Cut(msg, ">")
	_, line, ok2 := strings.Cut(rest, audit.SyslogTag+"[")
	_, line, ok3 := strings.Cut(line, "]: ")
	if !ok || !ok2 || !ok3 || !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("message %q is not one tagged line", msg)
	}
	var e audit.Event
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatalf("message %q: %v", msg, err)
	}
	return strings.TrimPrefix(pri, "<"), e
}

// TestSyslogOneMessagePerLine: each line is one authpriv.info message
// tagged keyhole-audit.
func TestSyslogOneMessagePerLine(t *testing.T) {
	t.Parallel()
	d := listenSyslog(t, filepath.Join(t.TempDir(), "log"))
	w, err := audit.OpenSyslog("unixgram", d.path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Reopens() {
		t.Fatal("a syslog writer reopens")
	}
	for _, s := range []string{"a", "b\nc"} {
		mustLog(t, w, audit.Event{Event: audit.SessionStart, Session: s})
		pri, e := d.next(t)
		if pri != "86" { // authpriv (10) * 8 + info (6)
			t.Errorf("priority %s, want 86", pri)
		}
		if e.Event != audit.SessionStart || e.Session != s {
			t.Errorf("got %+v", e)
		}
	}
}

// TestSyslogFailsClosed: with the socket gone, a line fails and Ready
// fails; once a daemon listens again, Ready sends the audit.resumed
// message and lines flow again.
func TestSyslogFailsClosed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "log")
	d := listenSyslog(t, path)
	w, err := audit.OpenSyslog("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var told []error
	w.Notify(func(err error) { told = append(told, err) })
	mustLog(t, w, audit.Event{Event: audit.SessionStart, Session: "1"})
	d.next(t)

	d.conn.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := w.Log(audit.Event{Event: audit.SessionStart, Session: "2"}); err == nil {
		t.Fatal("line to a gone syslog socket succeeded")
	}
	if err := w.Ready(); err == nil {
		t.Fatal("Ready with the syslog socket gone succeeded")
	}
	if _, err := audit.OpenSyslog("unixgram", path); err == nil {
		t.Fatal("OpenSyslog on a gone socket succeeded")
	}

	d = listenSyslog(t, path)
	if err := w.Ready(); err != nil {
		t.Fatalf("Ready with syslog back: %v", err)
	}
	_, e := d.next(t)
	if e.Event != audit.Resumed || !strings.Contains(e.Reason, "(1 not written)") {
		t.Fatalf("first message after the outage: %+v", e)
	}
	mustLog(t, w, audit.Event{Event: audit.SessionStart, Session: "3"})
	if _, e := d.next(t); e.Session != "3" {
		t.Fatalf("got %+v", e)
	}
	if len(told) != 2 || told[0] == nil || told[1] != nil {
		t.Fatalf("notified %v, want an error then nil", told)
	}
}

// TestTeeFailsWhenOneSinkFails: a file and syslog together; with the
// syslog socket gone a line fails (and Ready fails) although the file
// took it.
func TestTeeFailsWhenOneSinkFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := listenSyslog(t, filepath.Join(dir, "log"))
	sw, err := audit.OpenSyslog("unixgram", d.path)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	fw, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	sink := audit.Tee(fw, sw)
	if err := sink.Log(audit.Event{Event: audit.SessionStart, Session: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, e := d.next(t); e.Session != "1" {
		t.Fatalf("syslog got %+v", e)
	}
	d.conn.Close()
	if err := os.Remove(d.path); err != nil {
		t.Fatal(err)
	}
	if err := sink.Log(audit.Event{Event: audit.SessionStart, Session: "2"}); err == nil {
		t.Fatal("line with syslog gone succeeded")
	}
	if err := sink.(audit.Checker).Ready(); err == nil {
		t.Fatal("Ready with syslog gone succeeded")
	}
	if got := readLines(t, filepath.Join(dir, "audit.log")); len(got) != 2 {
		t.Fatalf("file has %d lines, want 2", len(got))
	}
}
