package worker_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/worker"
)

// serve runs Serve on a Start message and returns the messages it
// wrote, by type. It confirms every AuditSync message, as the server does
// once the line is written.
func serve(t *testing.T, st *workerproto.Start) (prints []string, events []audit.Event, res *workerproto.Result) {
	t.Helper()
	var in bytes.Buffer
	if err := workerproto.NewWriter(&in).WriteJSON(workerproto.TypeStart, st); err != nil {
		t.Fatal(err)
	}
	// The server keeps stdin open while the script runs, and writes a
	// Confirm to it for each AuditSync.
	pr, pw := io.Pipe()
	defer pw.Close()
	confirm := workerproto.NewWriter(pw)
	or, ow := io.Pipe()
	served := make(chan error, 1)
	go func() {
		err := worker.Serve(io.MultiReader(&in, pr), ow)
		ow.Close()
		served <- err
	}()
	r := workerproto.NewReader(or, 0)
	for {
		typ, p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case workerproto.TypePrint:
			prints = append(prints, string(p))
		case workerproto.TypeAuditSync:
			go func() { _ = confirm.WriteRaw(workerproto.TypeConfirm, nil) }()
			fallthrough
		case workerproto.TypeAudit:
			var e audit.Event
			if err := workerproto.Decode(typ, p, &e); err != nil {
				t.Fatal(err)
			}
			events = append(events, e)
		case workerproto.TypeResult:
			if res != nil {
				t.Fatal("two results")
			}
			res = &workerproto.Result{}
			if err := workerproto.Decode(typ, p, res); err != nil {
				t.Fatal(err)
			}
			pw.Close() // no other script: the worker ends

		}
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if res == nil {
		t.Fatal("no result")
	}
	return prints, events, res
}

func start(t *testing.T, script string) *workerproto.Start {
	t.Helper()
	ps, err := authz.LoadFiles(map[string][]byte{"p.cedar": []byte(`@id("no-etc") forbid (principal, action, resource in Keyhole::Dir::"/etc");`)})
	if err != nil {
		t.Fatal(err)
	}
	return &workerproto.Start{
		Script:        script,
		Principal:     authz.Principal{UserID: "agent-7", Role: "logs", Principals: []string{"logs"}, Auth: "certificate"},
		Context:       authz.Context{Now: time.Now(), SessionID: "s1", Transport: "script"},
		Policies:      ps.Files(),
		PolicyVersion: ps.Version(),
		Limits:        workerproto.Limits{MaxWall: 10 * time.Second},
	}
}

func TestServeWorker(t *testing.T) {
	t.Parallel()
	prints, events, res := serve(t, start(t, `print("a")
v, err = catch(fs.read, "/etc/hostname")
print(err.kind)
`))
	if strings.Join(prints, "|") != "a\n|ACCESS_DENIED\n" {
		t.Errorf("prints %q", prints)
	}
	if len(events) != 1 || events[0].Event != audit.Decision || events[0].Decision != "deny" ||
		events[0].Resource != "/etc/hostname" || events[0].Session != "" {
		t.Errorf("events %+v", events)
	}
	if res.Exit != 0 || res.Error != nil || res.Steps == 0 {
		t.Errorf("result %+v", res)
	}
}

func TestServeWorkerRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(*workerproto.Start)
		kind    string
		message string
	}{
		{"policy-version-mismatch", func(s *workerproto.Start) { s.PolicyVersion = "sha256:00" }, "INTERNAL", "policy snapshot is"},
		{"policy-does-not-load", func(s *workerproto.Start) { s.Policies = map[string][]byte{"x.cedar": []byte("permit")} }, "INTERNAL", "policy snapshot does not load"},
		{"args-not-object", func(s *workerproto.Start) { s.Args = json.RawMessage(`[1]`) }, "INVALID_ARGUMENT", "args: must be a JSON object"},
		{"syntax-error", func(s *workerproto.Start) { s.Script = "def (" }, "SYNTAX_ERROR", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := start(t, `print("ran")`)
			tt.change(st)
			prints, events, res := serve(t, st)
			if len(prints) != 0 || len(events) != 0 {
				t.Errorf("ran anyway: %q %v", prints, events)
			}
			if res.Exit == 0 || res.Error == nil || res.Error.Kind != tt.kind || !strings.Contains(res.Error.Message, tt.message) {
				t.Errorf("result %+v %+v", res, res.Error)
			}
		})
	}
}

func TestServeWorkerBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "read start"},
		{"not-a-start", []byte("\x00\x00\x00\x02\x03hi"), "first message is print"},
		{"bad-json", []byte("\x00\x00\x00\x02\x01{]"), "decode start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := worker.Serve(bytes.NewReader(tt.in), &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) || out.Len() != 0 {
				t.Errorf("err %v, out %q", err, out.String())
			}
		})
	}
}

// TestServeWorkerStopsAtEndOfInput: the server closing the worker's stdin
// (the session ended) stops the script.
func TestServeWorkerStopsAtEndOfInput(t *testing.T) {
	t.Parallel()
	var in, out bytes.Buffer
	st := start(t, "while True: pass")
	st.Limits.MaxSteps = 1 << 60
	if err := workerproto.NewWriter(&in).WriteJSON(workerproto.TypeStart, st); err != nil {
		t.Fatal(err)
	}
	if err := worker.Serve(&in, &out); err != nil {
		t.Fatal(err)
	}
	_, p, err := workerproto.NewReader(&out, 0).Next()
	if err != nil || !strings.Contains(string(p), "session ended") {
		t.Fatalf("result %s %v", p, err)
	}
}

// TestServeWorkerDryRun: a Start with DryRun runs the script on a dry-run
// host: the write is decided and reported, the file is not written, and
// the script can tell.
func TestServeWorkerDryRun(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ps, err := authz.LoadFiles(map[string][]byte{"p.cedar": []byte(`@id("tmp-write") permit (principal,
  action in [Keyhole::Action::"write", Keyhole::Action::"create"], resource in Keyhole::Dir::"` + dir + `");`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		st := start(t, `fs.write(args["path"], "x")
print(host.dry_run)`)
		st.Policies, st.PolicyVersion, st.DryRun = ps.Files(), ps.Version(), dry
		path := filepath.Join(dir, fmt.Sprintf("out-%v", dry))
		st.Args = json.RawMessage(fmt.Sprintf(`{"path": %q}`, path))
		prints, events, res := serve(t, st)
		if res.Exit != 0 || len(events) != 1 || events[0].Decision != "allow" || events[0].Action != "create" {
			t.Fatalf("dry %v: result %+v %v, events %+v", dry, res, res.Error, events)
		}
		if want := map[bool]string{true: "True\n", false: "False\n"}[dry]; strings.Join(prints, "") != want {
			t.Errorf("dry %v: host.dry_run printed %q, want %q", dry, prints, want)
		}
		_, err := os.Stat(path)
		if written := err == nil; written == dry {
			t.Errorf("dry %v: file written %v", dry, written)
		}
	}
}
