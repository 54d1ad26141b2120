package hostops_test

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/hostops"
)

const factsPolicy = `@id("facts") permit (principal, action == Keyhole::Action::"read", resource)
  when { resource.path like "/proc/sys/kernel/*" || ["/proc/uptime", "/proc/loadavg", "/proc/meminfo"].contains(resource.path) };`

func TestHostFacts(t *testing.T) {
	h, mem := cedarHost(t, factsPolicy)
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	name, err := h.Hostname()
	if want, _ := os.Hostname(); err != nil || name != want {
		t.Errorf("Hostname() = %q, %v, want %q", name, err, want)
	}
	k, err := h.Kernel()
	if err != nil || k.Name != "Linux" || k.Release != unix.ByteSliceToString(uts.Release[:]) || k.Version != unix.ByteSliceToString(uts.Version[:]) {
		t.Errorf("Kernel() = %+v, %v, want uname's release and version", k, err)
	}
	up, err := h.Uptime()
	if err != nil || up <= 0 {
		t.Errorf("Uptime() = %v, %v", up, err)
	}
	l, err := h.Load()
	if err != nil || l.Load1 < 0 || l.Total < 1 || l.Running < 0 {
		t.Errorf("Load() = %+v, %v", l, err)
	}
	m, err := h.Memory()
	if err != nil || m.Total <= 0 || m.Available > m.Total || m.Free > m.Total {
		t.Errorf("Memory() = %+v, %v", m, err)
	}
	// One decision line per file read, each an allowed read.
	want := []string{hostops.HostnameFile, hostops.OSReleaseFile, hostops.OSVersionFile, hostops.UptimeFile, hostops.LoadavgFile, hostops.MeminfoFile}
	ev := mem.Events()
	if len(ev) != len(want) {
		t.Fatalf("got %d audit events, want %d: %+v", len(ev), len(want), ev)
	}
	for i, e := range ev {
		if e.Action != "read" || e.Resource != want[i] || e.Decision != "allow" {
			t.Errorf("event %d = %s %s %s, want allow read %s", i, e.Decision, e.Action, e.Resource, want[i])
		}
	}
}

func TestHostFactsDenied(t *testing.T) {
	h, mem := cedarHost(t, `@id("only-uptime") permit (principal, action == Keyhole::Action::"read", resource == Keyhole::File::"/proc/uptime");`)
	calls := []struct {
		name, resource string
		call           func() error
	}{
		{"hostname", hostops.HostnameFile, func() error { _, err := h.Hostname(); return err }},
		{"kernel", hostops.OSReleaseFile, func() error { _, err := h.Kernel(); return err }},
		{"load", hostops.LoadavgFile, func() error { _, err := h.Load(); return err }},
		{"memory", hostops.MeminfoFile, func() error { _, err := h.Memory(); return err }},
		{"disk", "/proc", func() error { _, err := h.Disk("/proc"); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			before := len(mem.Events())
			err := c.call()
			if errKind(err) != hostops.KindAccessDenied || !strings.Contains(err.Error(), c.resource) {
				t.Fatalf("err = %v, want ACCESS_DENIED on %s", err, c.resource)
			}
			if ev := mem.Events()[before:]; len(ev) != 1 || ev[0].Decision != "deny" || ev[0].Resource != c.resource {
				t.Fatalf("audit = %+v", ev)
			}
		})
	}
	if _, err := h.Uptime(); err != nil {
		t.Fatalf("Uptime() = %v", err)
	}
}

func TestDisk(t *testing.T) {
	s := newSandbox(t)
	h, mem := cedarHost(t, `@id("stat-sandbox") permit (principal, action == Keyhole::Action::"stat", resource in Keyhole::Dir::"`+s.allowed+`");`)
	d, err := h.Disk(s.allowed + "/sub/../public.txt")
	if err != nil {
		t.Fatal(err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(s.allowed, &fs); err != nil {
		t.Fatal(err)
	}
	if d.Path != s.path("allowed/public.txt") || d.Total <= 0 || d.Available > d.Total || d.Free > d.Total || d.Inodes != int64(fs.Files) {
		t.Errorf("Disk() = %+v", d)
	}
	if ev := mem.Events(); len(ev) != 1 || ev[0].Action != "stat" || ev[0].Decision != "allow" {
		t.Errorf("audit = %+v", ev)
	}
	for _, p := range []string{s.allowed + "/link-secret", s.forbidden, s.allowed + "/../forbidden", "/"} {
		if _, err := h.Disk(p); errKind(err) != hostops.KindAccessDenied {
			t.Errorf("Disk(%q) = %v, want ACCESS_DENIED", p, err)
		}
	}
	if _, err := h.Disk("relative"); errKind(err) != hostops.KindInvalidArgument {
		t.Errorf("Disk(relative) = %v, want INVALID_ARGUMENT", err)
	}
	if _, err := h.Disk(s.allowed + "/missing"); errKind(err) != hostops.KindNotFound {
		t.Errorf("Disk(missing) = %v, want NOT_FOUND", err)
	}
}
