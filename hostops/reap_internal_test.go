package hostops

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestParentInStat(t *testing.T) {
	for _, tc := range []struct {
		stat string
		ppid int
		ok   bool
	}{
		{"123 (sleep) S 42 123 123 0 -1", 42, true},
		{"123 (a) b) c) R 7 1 1", 7, true}, // a command name with ") " in it
		{"123 (x y) Z 1 0 0", 1, true},
		{"123 (sleep)", 0, false},
		{"garbage", 0, false},
	} {
		ppid, ok := parentInStat([]byte(tc.stat))
		if ppid != tc.ppid || ok != tc.ok {
			t.Errorf("parentInStat(%q) = %d, %v, want %d, %v", tc.stat, ppid, ok, tc.ppid, tc.ok)
		}
	}
}

// TestChildrenOf: both ways of listing this process's children find a
// child it started, and Sweep does nothing in a process that does not
// adopt orphans.
func TestChildrenOf(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "read x")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	pid := cmd.Process.Pid
	for name, list := range map[string]func(int) ([]int, error){"task-children": childrenOf, "scan": childrenByScan} {
		kids, err := list(os.Getpid())
		if err != nil || !slices.Contains(kids, pid) {
			t.Errorf("%s = %v, %v; want it to hold %d", name, kids, err, pid)
		}
	}
	if orphans.on.Load() {
		t.Fatal("this test process adopts orphans")
	}
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if kids, _ := childrenOf(os.Getpid()); !slices.Contains(kids, pid) {
		t.Fatal("Sweep killed a child of a process that does not adopt orphans")
	}
}

// BenchmarkChildrenOf is what a sweep with nothing to kill costs after
// each program a worker runs: one listing of this process's children.
func BenchmarkChildrenOf(b *testing.B) {
	b.Run("task-children", func(b *testing.B) {
		for range b.N {
			if _, err := childrenOf(os.Getpid()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		for range b.N {
			if _, err := childrenByScan(os.Getpid()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
