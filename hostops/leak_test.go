package hostops_test

import (
	"os"
	"testing"

	"github.com/keyhole-dev/keyhole/hostops"
)

// TestNoDescriptorLeak runs every kind of operation and outcome many times
// and checks that the process holds as many descriptors as before. It must
// not run in parallel with other tests.
func TestNoDescriptorLeak(t *testing.T) {
	s := newSandbox(t)
	h, _ := newHost(s.policy("/dev/null", "/proc"))
	h.MaxReadBytes = 64
	h.MaxListEntries = 2
	a, f := s.allowed, s.forbidden
	paths := []string{
		a + "/public.txt", a + "/link-public", a + "/link-secret", f + "/secret", a + "/../forbidden/secret",
		a + "/missing", a + "/x/y/z", f + "/nope", f + "/x/y", a + "/missing/../../forbidden/secret",
		a + "/dangling-allowed", a + "/dangling-forbidden", a + "/dangling-chain", a + "/loop",
		a + "/public.txt/x", a + "/public.txt/", a + "/sub", a + "/empty", a, f, a + "/fifo", a + "/sock",
		"/dev/null", "/proc/self/root" + f + "/secret", "/proc/self/status", "relative", "/a\x00b",
	}
	run := func() {
		for _, p := range paths {
			h.Read(p, 0)
			h.Read(p, 3)
			h.List(p)
			h.Stat(p)
		}
	}
	for _, mode := range []string{"openat2", "open"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "open" {
				hostops.WithoutOpenat2(t)
			}
			run() // warm up anything the runtime opens once
			before := openFDs(t)
			for range 50 {
				run()
			}
			if after := openFDs(t); after != before {
				t.Fatalf("%d descriptors open before, %d after", before, after)
			}
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
