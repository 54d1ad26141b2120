package worker

import (
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
)

// TestWorkerRing runs a worker with a small decision ring against a
// server that takes records out only as the real one does before each
// message (up to a print mark, and that mark for a print): every decision
// arrives once, in order with the prints; a full ring is emptied through a
// Sync and the record put again; an operation that changes the host
// waits for the Confirm of its Sync; and only a decision too large for
// the ring goes as a message, an AuditSync.
func TestWorkerRing(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tru, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := authz.LoadFiles(map[string][]byte{"p.cedar": []byte(fmt.Sprintf(
		`@id("dir") permit (principal, action in [Keyhole::Action::"stat", Keyhole::Action::"create"], resource in Keyhole::Dir::%q);
@id("true") permit (principal, action == Keyhole::Action::"exec", resource) when { resource.path == %q };`, dir, tru))})
	if err != nil {
		t.Fatal(err)
	}
	// 200 stats of about 60 bytes each overflow a 4 KiB ring at least twice.
	script := fmt.Sprintf(`
d = %q
print("start")
for i in range(200):
    fs.stat(d + "/in")
print("middle")
fs.write(d + "/new", "x")
catch(fs.stat, "/etc/passwd")
print("end")
proc.run([%q, "a" * 70000])
`, dir, tru)
	st := &workerproto.Start{
		Script:        script,
		Principal:     authz.Principal{UserID: "agent-7", Role: "logs", Principals: []string{"logs"}, Auth: "certificate"},
		Context:       authz.Context{Now: time.Now(), SessionID: "s1", Transport: "script"},
		Policies:      ps.Files(),
		PolicyVersion: ps.Version(),
		Limits:        workerproto.Limits{MaxWall: 10 * time.Second, MaxSteps: 1 << 30},
	}

	f, err := workerproto.NewRingFile(4096)
	if err != nil {
		t.Fatal(err)
	}
	producer, err := workerproto.MapRing(f)
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := workerproto.MapRing(f)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer producer.Unmap()
	defer consumer.Unmap()

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- serve(inR, outW, producer, nil, nil, nil)
		outW.Close()
	}()
	in := workerproto.NewWriter(inW)
	if err := in.WriteJSON(workerproto.TypeStart, st); err != nil {
		t.Fatal(err)
	}

	var events []string
	// take takes records up to the next print mark, and that mark too for
	// a print, as sshserver's reader does.
	take := func(print bool) {
		marked := false
		stop := fmt.Errorf("at a mark")
		err := consumer.Take(func(rec []byte) error {
			if len(rec) == 0 {
				if print && !marked {
					marked = true
					return nil
				}
				return stop
			}
			if marked {
				return stop
			}
			d, err := workerproto.ParseDecision(rec)
			if err != nil {
				return err
			}
			events = append(events, fmt.Sprintf("%s %s %v", d.Action, strings.TrimPrefix(d.Resource, dir), d.Allow))
			return nil
		})
		if err != nil && err != stop {
			t.Fatal(err)
		}
		if print && !marked {
			t.Fatal("a print with no mark in the ring")
		}
	}
	syncs := 0
	r := workerproto.NewReader(outR, 0)
	for {
		typ, p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		take(typ == workerproto.TypePrint)
		switch typ {
		case workerproto.TypeSync:
			syncs++
			if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
				t.Errorf("the write acted before its Sync was confirmed: %v", err)
			}
			if err := in.WriteRaw(workerproto.TypeConfirm, nil); err != nil {
				t.Fatal(err)
			}
		case workerproto.TypeAuditSync:
			var e audit.Event
			if err := workerproto.Decode(typ, p, &e); err != nil {
				t.Fatal(err)
			}
			events = append(events, fmt.Sprintf("%s %s %s message, argv of %d bytes", e.Action, e.Resource, e.Decision, len(e.Argv)))
			if err := in.WriteRaw(workerproto.TypeConfirm, nil); err != nil {
				t.Fatal(err)
			}
		case workerproto.TypePrint:
			events = append(events, "print "+strings.TrimSpace(string(p)))
		case workerproto.TypeResult:
			var res workerproto.Result
			if err := workerproto.Decode(typ, p, &res); err != nil {
				t.Fatal(err)
			}
			if res.Exit != 0 {
				t.Fatalf("exit %d: %+v", res.Exit, res.Error)
			}
			inW.Close()
		default:
			t.Fatalf("worker sent a %s message", typ)
		}
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	want := []string{"print start"}
	for range 200 {
		want = append(want, "stat /in true")
	}
	want = append(want, "print middle", "create /new true", "stat /etc/passwd false", "print end",
		fmt.Sprintf("exec %s allow message, argv of %d bytes", tru, len(tru)+1+70000))
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
	// At least two for a full ring and one for the write.
	if syncs < 3 {
		t.Errorf("%d Sync messages, want at least 3", syncs)
	}
	if consumer.Pending() {
		t.Error("records left in the ring")
	}
}
