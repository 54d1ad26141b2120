//go:build linux

package hostops

// Orphans: what a program leaves running after it exits, outside its
// process group (a daemon made with `setsid -f`, a double fork). A process
// that calls AdoptOrphans becomes their parent instead of init, and kills
// and reaps them after each program it runs.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// maxSweepRounds bounds the rounds of one sweep. Each round kills every
// stray child and reaps it; what a stray had started is reparented to this
// process and found by the next round, so a tree n levels deep takes n
// rounds. A tree that keeps forking faster than it is killed ends the
// sweep with an error after this many.
const maxSweepRounds = 1000

// orphans is the state of AdoptOrphans.
var orphans struct {
	// on: this process is a child subreaper and sweeps after each program.
	on atomic.Bool
	// mu orders starts and sweeps: a spawn holds it for reading from before
	// its program starts until the leader is in live, a sweep for writing,
	// so a sweep never sees a leader it does not know.
	mu sync.RWMutex
	// live holds the leaders of the programs being run, each reaped by its
	// own spawn; guarded by liveMu.
	liveMu sync.Mutex
	live   map[int]bool
}

// AdoptOrphans makes this process the child subreaper of everything it
// starts (PR_SET_CHILD_SUBREAPER): a process started by a program that
// Exec or Service runs, and left running when its parent exits, becomes a
// child of this process rather than of init. From then on, every Exec and
// Service ends by killing and reaping all of them (Sweep), so nothing a
// program started outlives the call, daemons included.
//
// It changes the whole process, for good: call it once, and only in a
// process whose children are all started by Exec and Service (the keyhole
// worker), since a sweep kills every other child too.
func AdoptOrphans() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("hostops: become child subreaper: %w", err)
	}
	orphans.on.Store(true)
	return nil
}

// Sweep kills (SIGKILL) and reaps every child of this process that no
// running Exec or Service waits for, and, round after round, whatever of
// theirs is reparented to this process as they die, until none is left.
// A stray that leads a process group (a daemon after setsid) is killed
// with its group. Only this process's own children are signalled, never a
// pid read from elsewhere, so a pid that was reused is never hit; each
// one is reaped before the next round, so none lingers as a zombie.
//
// Reaping waits for each killed process to die: one stuck in the kernel
// (uninterruptible sleep on a hung file system) holds the sweep up, and
// the server's kill of the worker is the bound then.
//
// It does nothing unless AdoptOrphans was called. Exec and Service call it
// after each program; the worker calls it again before it exits.
func Sweep() error {
	if !orphans.on.Load() {
		return nil
	}
	orphans.mu.Lock()
	defer orphans.mu.Unlock()
	self := os.Getpid()
	for range maxSweepRounds {
		kids, err := childrenOf(self)
		if err != nil {
			return fmt.Errorf("hostops: sweep: list children: %w", err)
		}
		orphans.liveMu.Lock()
		strays := kids[:0]
		for _, pid := range kids {
			if !orphans.live[pid] {
				strays = append(strays, pid)
			}
		}
		orphans.liveMu.Unlock()
		if len(strays) == 0 {
			return nil
		}
		for _, pid := range strays {
			// Unreaped, pid is still ours: neither it nor a group it leads
			// can be another process's.
			if pgid, err := unix.Getpgid(pid); err == nil && pgid == pid {
				unix.Kill(-pid, unix.SIGKILL)
			}
			unix.Kill(pid, unix.SIGKILL)
		}
		for _, pid := range strays {
			var ws unix.WaitStatus
			for {
				_, err := unix.Wait4(pid, &ws, 0, nil)
				if err != unix.EINTR {
					break
				}
			}
		}
	}
	return fmt.Errorf("hostops: sweep: processes left by a program still fork after %d rounds of kills", maxSweepRounds)
}

// startLeader runs start, which starts a program, so that no sweep runs
// meanwhile, and records the leader it returns as live. The caller calls
// endLeader once the leader is reaped.
func startLeader(start func() (int, error)) error {
	if !orphans.on.Load() {
		_, err := start()
		return err
	}
	orphans.mu.RLock()
	defer orphans.mu.RUnlock()
	pid, err := start()
	if err == nil {
		orphans.liveMu.Lock()
		if orphans.live == nil {
			orphans.live = map[int]bool{}
		}
		orphans.live[pid] = true
		orphans.liveMu.Unlock()
	}
	return err
}

// endLeader forgets a reaped leader.
func endLeader(pid int) {
	if !orphans.on.Load() {
		return
	}
	orphans.liveMu.Lock()
	delete(orphans.live, pid)
	orphans.liveMu.Unlock()
}

// childrenOf returns the children of process pid: from
// /proc/<pid>/task/<tid>/children (every thread's, since a child belongs
// to the thread that forked it or adopted it), or, where the kernel has
// no such file, from the parent field of every /proc/<n>/stat.
func childrenOf(pid int) ([]int, error) {
	base := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	var out []int
	for i, t := range tasks {
		data, err := os.ReadFile(base + t.Name() + "/children")
		if errors.Is(err, os.ErrNotExist) {
			if i == 0 {
				return childrenByScan(pid)
			}
			continue // the thread ended
		}
		if err != nil {
			return nil, err
		}
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// childrenByScan finds the children of pid by reading every process's
// parent from /proc/<n>/stat.
func childrenByScan(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		if ppid, ok := parentInStat(data); ok && ppid == pid {
			out = append(out, n)
		}
	}
	return out, nil
}

// parentInStat reads the parent pid from the text of /proc/<n>/stat:
// "pid (comm) state ppid ...", where comm may hold spaces and parentheses.
func parentInStat(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.Atoi(f[1])
	return n, err == nil
}
