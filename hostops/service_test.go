package hostops_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/hostops"
)

// fakeManager writes a service manager: a real executable that appends
// its arguments, one a line, then "--end", to a log file, and answers
// like systemctl. Asked to `show --property=Id --value -- NAME`, it
// resolves "ssh", "ssh.service" and the alias "sshd" to "ssh.service", a
// name with a suffix to itself, any other name to NAME.service, fails for
// "unresolvable" and answers two lines for "twolines". Of the units,
// "web.service" is active, "broken.service" fails every action, anything
// else is inactive.
func fakeManager(t testing.TB) (path, log string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path, log = filepath.Join(dir, "svcmgr"), filepath.Join(dir, "calls.log")
	mustWrite(t, path, `#!/bin/sh
for a in "$@"; do printf '%s\n' "$a" >> `+log+`; done
echo --end >> `+log+`
for last in "$@"; do :; done
for a in "$@"; do
	[ "$a" = show ] || continue
	case "$last" in
	ssh|sshd|ssh.service) echo ssh.service ;;
	unresolvable) echo "Failed to get properties: Unit name unresolvable is not valid." >&2; exit 1 ;;
	twolines) printf 'a.service\nb.service\n' ;;
	*.*) echo "$last" ;;
	*) echo "$last.service" ;;
	esac
	exit 0
done
case "$last" in
broken.service) echo "Job for broken.service failed." >&2; exit 1 ;;
web.service) echo "active (running)"; exit 0 ;;
esac
[ "$1" = status ] || [ "$2" = status ] && { echo "inactive (dead)"; exit 3; }
exit 0
`, 0o755)
	return path, log
}

// actions returns the calls of the fake manager that were not a `show`.
func actions(calls [][]string) [][]string {
	var out [][]string
	for _, c := range calls {
		if !slices.Contains(c, "show") {
			out = append(out, c)
		}
	}
	return out
}

// calls returns the argument vectors the fake manager was run with.
func calls(t testing.TB, log string) [][]string {
	t.Helper()
	data, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	var cur []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "--end" {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	return out
}

const svcPolicy = `@id("web-ops") permit (principal, action in [Keyhole::Action::"status", Keyhole::Action::"start",
  Keyhole::Action::"stop", Keyhole::Action::"restart", Keyhole::Action::"reload"],
  resource) when { ["web", "broken", "idle", "getty@tty1", "unresolvable", "twolines"].contains(resource.name) };
@id("no-db-stop") forbid (principal, action == Keyhole::Action::"stop", resource == Keyhole::Service::"db");
@id("db-status") permit (principal, action == Keyhole::Action::"status", resource == Keyhole::Service::"db");`

func TestService(t *testing.T) {
	mgr, log := fakeManager(t)
	h, mem := cedarHost(t, svcPolicy)
	h.ServiceManager = []string{mgr}
	tests := []struct {
		name, action, svc string
		unit              string // the unit the manager acts on; svc + ".service" when empty
		kind              string
		decision          string
		ran               bool
		active            bool // status only
		exit              int
		msg               string // part of the error message
	}{
		{name: "restart-allowed", action: "restart", svc: "web", decision: "allow", ran: true},
		{name: "start-allowed", action: "start", svc: "idle", decision: "allow", ran: true},
		{name: "stop-allowed", action: "stop", svc: "web", decision: "allow", ran: true},
		{name: "reload-allowed", action: "reload", svc: "web", decision: "allow", ran: true},
		{name: "template-instance-name", action: "restart", svc: "getty@tty1.service", unit: "getty@tty1.service", decision: "allow", ran: true},
		{name: "unresolvable-fails-closed", action: "restart", svc: "unresolvable", kind: hostops.KindIOError, decision: "deny", msg: "cannot resolve the name: exit status 1"},
		{name: "two-units-fails-closed", action: "restart", svc: "twolines", kind: hostops.KindIOError, decision: "deny", msg: "not one unit id on a line"},
		{name: "status-active", action: "status", svc: "web", decision: "allow", ran: true, active: true},
		{name: "status-inactive-is-no-error", action: "status", svc: "idle", decision: "allow", ran: true, exit: 3},
		{name: "status-allowed-stop-forbidden", action: "status", svc: "db", decision: "allow", ran: true, exit: 3},
		{name: "stop-forbidden", action: "stop", svc: "db", kind: hostops.KindAccessDenied, decision: "deny", msg: "policy no-db-stop"},
		{name: "restart-default-deny", action: "restart", svc: "db", kind: hostops.KindAccessDenied, decision: "deny", msg: "no policy permits it"},
		{name: "manager-fails", action: "restart", svc: "broken", kind: hostops.KindIOError, decision: "allow", ran: true, exit: 1, msg: `exit status 1: "Job for broken.service failed."`},
		{name: "leading-dash", action: "restart", svc: "-web", kind: hostops.KindInvalidArgument, decision: "deny", msg: "must not start with '-'"},
		{name: "option-smuggling", action: "restart", svc: "--root=/", kind: hostops.KindInvalidArgument, decision: "deny"},
		{name: "space", action: "restart", svc: "web db", kind: hostops.KindInvalidArgument, decision: "deny"},
		{name: "slash", action: "restart", svc: "../web", kind: hostops.KindInvalidArgument, decision: "deny"},
		{name: "glob", action: "stop", svc: "*", kind: hostops.KindInvalidArgument, decision: "deny"},
		{name: "newline", action: "restart", svc: "web\nx", kind: hostops.KindInvalidArgument, decision: "deny"},
		{name: "empty", action: "restart", svc: "", kind: hostops.KindInvalidArgument, decision: "deny"},
		{name: "dot-dot", action: "restart", svc: "..", kind: hostops.KindInvalidArgument, decision: "deny"},
		{name: "too-long", action: "restart", svc: strings.Repeat("a", hostops.MaxServiceName+1), kind: hostops.KindInvalidArgument, decision: "deny"},
		{name: "unknown-action", action: "kill", svc: "web", kind: hostops.KindInvalidArgument, decision: "deny", msg: `unknown service action "kill"`},
		{name: "file-action-is-not-a-service-action", action: "read", svc: "web", kind: hostops.KindInvalidArgument, decision: "deny"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(log)
			before := len(mem.Events())
			res, err := h.Service(context.Background(), tc.action, tc.svc, hostops.ExecOptions{})
			if got := errKind(err); got != tc.kind {
				t.Fatalf("err = %v, want kind %q", err, tc.kind)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want it to contain %q", err, tc.msg)
			}
			events := mem.Events()[before:]
			if len(events) != 1 || events[0].Action != tc.action || events[0].Decision != tc.decision {
				t.Fatalf("audit = %+v, want one %s of %s", events, tc.decision, tc.action)
			}
			all := calls(t, log)
			if kind := errKind(err); kind != hostops.KindInvalidArgument {
				// Every valid name is resolved first.
				if len(all) == 0 || strings.Join(all[0], " ") != "show --property=Id --value -- "+tc.svc {
					t.Fatalf("manager calls %q, want a show of %q first", all, tc.svc)
				}
			}
			got := actions(all)
			if !tc.ran {
				if len(got) != 0 {
					t.Fatalf("manager ran: %q", got)
				}
				return
			}
			unit := tc.unit
			if unit == "" {
				unit = tc.svc + ".service"
			}
			want := []string{tc.action, "--", unit}
			if len(got) != 1 || strings.Join(got[0], "\x00") != strings.Join(want, "\x00") {
				t.Fatalf("manager ran with %q, want once with %q", got, want)
			}
			if res.Exit != tc.exit {
				t.Errorf("exit = %d, want %d", res.Exit, tc.exit)
			}
			if tc.action == "status" && (res.Exit == 0) != tc.active {
				t.Errorf("active = %v, want %v", res.Exit == 0, tc.active)
			}
		})
	}
}

func TestServiceManagerConfig(t *testing.T) {
	mgr, log := fakeManager(t)
	t.Run("extra-arguments", func(t *testing.T) {
		h, _ := cedarHost(t, svcPolicy)
		h.ServiceManager = []string{mgr, "--no-ask-password"}
		if _, err := h.Service(context.Background(), "restart", "web", hostops.ExecOptions{}); err != nil {
			t.Fatal(err)
		}
		got := calls(t, log)
		if len(got) != 2 || strings.Join(got[0], " ") != "--no-ask-password show --property=Id --value -- web" ||
			strings.Join(got[1], " ") != "--no-ask-password restart -- web.service" {
			t.Fatalf("manager ran with %q", got)
		}
	})
	t.Run("dry-run-does-not-act", func(t *testing.T) {
		os.Remove(log)
		h, mem := cedarHost(t, svcPolicy)
		h.ServiceManager, h.DryRun = []string{mgr}, true
		if _, err := h.Service(context.Background(), "restart", "web", hostops.ExecOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := actions(calls(t, log)); len(got) != 0 {
			t.Fatalf("dry run ran the manager: %q", got)
		}
		if ev := mem.Events(); len(ev) != 1 || ev[0].Decision != "allow" {
			t.Fatalf("audit = %+v", ev)
		}
		// status changes nothing: it still runs.
		res, err := h.Service(context.Background(), "status", "web", hostops.ExecOptions{})
		if err != nil || res.Exit != 0 || len(actions(calls(t, log))) != 1 {
			t.Fatalf("dry-run status = %+v, %v", res, err)
		}
	})
	for _, tc := range []struct {
		name string
		mgr  []string
	}{
		{"missing", []string{"/nonexistent/systemctl"}},
		{"not-found-in-search-path", []string{"no-such-manager-keyhole"}},
		{"relative", []string{"./svcmgr"}},
		{"directory", []string{"/usr"}},
	} {
		t.Run("broken-manager-"+tc.name, func(t *testing.T) {
			h, mem := cedarHost(t, svcPolicy)
			h.ServiceManager = tc.mgr
			_, err := h.Service(context.Background(), "restart", "web", hostops.ExecOptions{})
			if errKind(err) != hostops.KindIOError || !strings.Contains(err.Error(), "service manager") {
				t.Fatalf("err = %v, want IO_ERROR about the service manager", err)
			}
			ev := mem.Events()
			if len(ev) != 1 || ev[0].Decision != "deny" || !strings.Contains(ev[0].Reason, "service manager") {
				t.Fatalf("audit = %+v, want one deny whose reason names the manager", ev)
			}
			// A denied principal learns nothing about the configuration.
			if _, err := h.Service(context.Background(), "restart", "db", hostops.ExecOptions{}); errKind(err) != hostops.KindAccessDenied {
				t.Fatalf("denied action with a broken manager: %v, want ACCESS_DENIED", err)
			}
		})
	}
}

func TestServiceDefaultManagerIsSystemctl(t *testing.T) {
	if got := strings.Join(hostops.DefaultServiceManager(), " "); got != "systemctl" {
		t.Fatalf("DefaultServiceManager = %q", got)
	}
	h, mem := cedarHost(t, svcPolicy)
	h.DryRun = true // never touch the real services of the machine running the test
	_, err := h.Service(context.Background(), "restart", "web", hostops.ExecOptions{})
	if _, lerr := os.Stat("/usr/bin/systemctl"); lerr != nil {
		t.Skip("no systemctl on this machine")
	}
	ev := mem.Events()
	if err != nil {
		// systemctl was asked but cannot answer on a machine not booted
		// with systemd: fail closed.
		if errKind(err) != hostops.KindIOError || !strings.Contains(err.Error(), "cannot resolve the name") {
			t.Fatal(err)
		}
		if len(ev) != 1 || ev[0].Decision != "deny" || ev[0].Resource != "web" || !strings.Contains(ev[0].Reason, "cannot resolve") {
			t.Fatalf("audit = %+v", ev)
		}
		return
	}
	if len(ev) != 1 || ev[0].Resource != "web" || ev[0].Action != "restart" {
		t.Fatalf("audit = %+v", ev)
	}
}

// TestServiceCanonicalName: a forbid on Service::"ssh" stops the unit
// whatever it is called: "ssh", "ssh.service" or its alias "sshd" are one
// entity, the canonical unit id without ".service", and the manager acts
// on the unit that was authorized.
func TestServiceCanonicalName(t *testing.T) {
	mgr, log := fakeManager(t)
	h, mem := cedarHost(t, `@id("svc") permit (principal, action, resource is Keyhole::Service);
@id("no-ssh-stop") forbid (principal, action == Keyhole::Action::"stop", resource == Keyhole::Service::"ssh");`)
	h.ServiceManager = []string{mgr}
	for _, name := range []string{"ssh", "ssh.service", "sshd"} {
		t.Run("stop-"+name, func(t *testing.T) {
			os.Remove(log)
			before := len(mem.Events())
			_, err := h.Service(context.Background(), "stop", name, hostops.ExecOptions{})
			if errKind(err) != hostops.KindAccessDenied || !strings.Contains(err.Error(), "policy no-ssh-stop") {
				t.Fatalf("stop %s: %v, want ACCESS_DENIED by no-ssh-stop", name, err)
			}
			ev := mem.Events()[before:]
			if len(ev) != 1 || ev[0].Decision != "deny" || ev[0].Resource != "ssh" {
				t.Fatalf("audit = %+v, want one deny of ssh", ev)
			}
			if got := actions(calls(t, log)); len(got) != 0 {
				t.Fatalf("manager acted: %q", got)
			}
		})
		t.Run("status-"+name, func(t *testing.T) {
			os.Remove(log)
			res, err := h.Service(context.Background(), "status", name, hostops.ExecOptions{})
			if err != nil || res.Name != "ssh" {
				t.Fatalf("status %s = %+v, %v, want the status of ssh", name, res, err)
			}
			if got := actions(calls(t, log)); len(got) != 1 || strings.Join(got[0], " ") != "status -- ssh.service" {
				t.Fatalf("manager ran %q, want status of ssh.service", got)
			}
		})
	}
	for _, q := range []struct {
		action, name string
		want         bool
	}{
		{"stop", "sshd", false},
		{"stop", "ssh.service", false},
		{"restart", "sshd", true},
		{"stop", "web", true},
		{"stop", "unresolvable", false},
	} {
		before := len(mem.Events())
		got, err := h.Allowed(q.action, q.name)
		if err != nil || got != q.want {
			t.Errorf("allowed(%s, %s) = %v, %v, want %v", q.action, q.name, got, err, q.want)
		}
		if ev := mem.Events()[before:]; len(ev) != 1 || (ev[0].Decision == "allow") != q.want {
			t.Errorf("allowed(%s, %s): audit = %+v", q.action, q.name, ev)
		}
	}
}
