package hostops

// Benchmarks of one authorized operation, taken apart: the whole Stat and
// Read with 100 Cedar policies loaded, the same in plain Go, and each step
// of the pipeline (pinning, naming, deciding) and each syscall on its own,
// so that docs/BENCHMARKS.md can say where the time goes.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
)

// benchPolicies is a set of n policies as a team writes them, scoped to
// roles and trees, one in four with a condition, that allows role "ops" to
// read and stat everything under root.
func benchPolicies(root string, n int) map[string][]byte {
	var b strings.Builder
	for i := range n - 1 {
		switch i % 4 {
		case 0, 1:
			fmt.Fprintf(&b, `@id("p%d") permit (principal in Keyhole::Role::"team%d", action in [Keyhole::Action::"read", Keyhole::Action::"stat"], resource in Keyhole::Dir::"/srv/team%d");`+"\n", i, i, i)
		case 2:
			fmt.Fprintf(&b, `@id("p%d") forbid (principal, action, resource in Keyhole::Dir::"/srv/secret%d");`+"\n", i, i)
		case 3:
			fmt.Fprintf(&b, `@id("p%d") forbid (principal, action == Keyhole::Action::"read", resource is Keyhole::File) when { resource.name like "*.key%d" };`+"\n", i, i)
		}
	}
	fmt.Fprintf(&b, `@id("ops-read") permit (principal in Keyhole::Role::"ops", action in [Keyhole::Action::"read", Keyhole::Action::"stat"], resource in Keyhole::Dir::%s);`+"\n", strconv.Quote(root))
	return map[string][]byte{"bench.cedar": []byte(b.String())}
}

// benchHost returns a Host with 100 policies that may read and stat the
// canonical path of a six-byte file it returns, auditing to sink.
func benchHost(b *testing.B, sink audit.Sink) (*Host, string) {
	b.Helper()
	root, err := filepath.EvalSymlinks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, "srv", "app", "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(path, []byte("alpha\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	ps, err := authz.LoadFiles(benchPolicies(root, 100))
	if err != nil {
		b.Fatal(err)
	}
	if ps.Len() != 100 {
		b.Fatalf("Len = %d, want 100", ps.Len())
	}
	h := &Host{
		Policy:    ps,
		Principal: authz.Principal{UserID: "agent-7", Role: "ops", Principals: []string{"ops"}, Auth: "certificate"},
		Context:   authz.Context{SessionID: "s-1", Transport: "script"},
		Audit:     sink,
		Event:     audit.Event{Session: "s-1", User: "agent-7", Role: "ops", Transport: "script"},
	}
	if _, err := h.Stat(path); err != nil {
		b.Fatal(err)
	}
	return h, path
}

// BenchmarkStat is one authorized Host.Stat, audit events dropped.
func BenchmarkStat(b *testing.B) {
	h, path := benchHost(b, audit.Discard)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Stat(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead is one authorized Host.Read of a six-byte file, audit
// events dropped.
func BenchmarkRead(b *testing.B) {
	h, path := benchHost(b, audit.Discard)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Read(path, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOSStat is the floor of BenchmarkStat: os.Stat.
func BenchmarkOSStat(b *testing.B) {
	_, path := benchHost(b, audit.Discard)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := os.Stat(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOSReadFile is the floor of BenchmarkRead: os.ReadFile.
func BenchmarkOSReadFile(b *testing.B) {
	_, path := benchHost(b, audit.Discard)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStep measures each step of the pipeline on its own.
func BenchmarkStep(b *testing.B) {
	h, path := benchHost(b, audit.Discard)
	b.Run("resolve", func(b *testing.B) {
		// Pin and name: everything Stat does before it asks the policy.
		b.ReportAllocs()
		for b.Loop() {
			t, err := resolve(path)
			if err != nil || t.obj == nil {
				b.Fatal(err)
			}
			t.obj.close()
		}
	})
	t, err := resolve(path)
	if err != nil || t.obj == nil {
		b.Fatal(err)
	}
	defer t.obj.close()
	res := resourceOf(t)
	// The stat decision is settled by the policies' scopes; the read
	// decision also evaluates, in cedar-go, a forbid whose condition is on
	// the file name.
	for _, action := range []string{actionStat, actionRead} {
		b.Run("decide-"+action, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if allow, _, _ := h.decide(action, res, h.now()); !allow {
					b.Fatal("denied")
				}
			}
		})
	}
	b.Run("audit", func(b *testing.B) {
		_, dec, _ := h.decide(actionStat, res, h.now())
		b.ReportAllocs()
		for b.Loop() {
			h.log(h.now(), actionStat, path, true, dec, "")
		}
	})
	b.Run("reopen", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fd, err := t.obj.reopen(unix.O_RDONLY)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	})
}

// BenchmarkSyscall measures, on this machine, each system call an
// operation makes, so that the floor of an operation (its syscalls) can be
// told from what keyhole adds on top.
func BenchmarkSyscall(b *testing.B) {
	_, path := benchHost(b, audit.Discard)
	fd, err := openPath(unix.AT_FDCWD, path)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	link := procSelfFD + strconv.Itoa(fd)
	var st unix.Stat_t
	buf := make([]byte, unix.PathMax)
	b.Run("getppid", func(b *testing.B) {
		for b.Loop() {
			unix.Getppid()
		}
	})
	b.Run("fstat", func(b *testing.B) {
		for b.Loop() {
			if err := unix.Fstat(fd, &st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fstatat-path", func(b *testing.B) {
		for b.Loop() {
			if err := unix.Fstatat(unix.AT_FDCWD, path, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("openat2-path+close", func(b *testing.B) {
		for b.Loop() {
			fd, err := unix.Openat2(unix.AT_FDCWD, path, pathHow())
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	})
	b.Run("readlink-proc-self-fd", func(b *testing.B) {
		for b.Loop() {
			if _, err := unix.Readlink(link, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open-proc-self-fd+close", func(b *testing.B) {
		for b.Loop() {
			rfd, err := unix.Open(link, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(rfd)
		}
	})
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(dir)
	name := strconv.Itoa(fd)
	b.Run("readlinkat-fd-dir", func(b *testing.B) {
		for b.Loop() {
			if _, err := unix.Readlinkat(dir, name, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("openat-fd-dir+close", func(b *testing.B) {
		for b.Loop() {
			rfd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(rfd)
		}
	})
}
