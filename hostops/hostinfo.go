//go:build linux

package hostops

// Host facts. Each one is read from the file the kernel publishes it in,
// through Read, so each is authorized as a "read" of that file and gives
// one decision line per file:
//
//	Hostname  /proc/sys/kernel/hostname
//	Kernel    /proc/sys/kernel/osrelease, /proc/sys/kernel/version
//	Uptime    /proc/uptime
//	Load      /proc/loadavg
//	Memory    /proc/meminfo
//
// A policy grants them with, for example,
// `resource in Keyhole::Dir::"/proc/sys/kernel"` or
// `resource == Keyhole::File::"/proc/loadavg"`. Disk is a "stat" of the
// path asked about, answered by statfs on the pinned object.

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Files the host facts are read from.
const (
	HostnameFile  = "/proc/sys/kernel/hostname"
	OSReleaseFile = "/proc/sys/kernel/osrelease"
	OSVersionFile = "/proc/sys/kernel/version"
	UptimeFile    = "/proc/uptime"
	LoadavgFile   = "/proc/loadavg"
	MeminfoFile   = "/proc/meminfo"
)

// maxFactBytes bounds the read of one fact file; /proc/meminfo is the
// largest, a few KiB.
const maxFactBytes = 64 << 10

// Kernel describes the running kernel.
type Kernel struct {
	Name    string // always "Linux"
	Release string // e.g. "6.1.0-18-amd64"
	Version string // e.g. "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"
}

// Load is the system load average.
type Load struct {
	Load1, Load5, Load15 float64
	Running, Total       int64 // runnable and total scheduling entities
}

// Memory is the system's memory, in bytes.
type Memory struct {
	Total, Free, Available, SwapTotal, SwapFree int64
}

// Disk is the usage of the file system holding a path, in bytes and
// inodes.
type Disk struct {
	Path                   string // canonical path of the object asked about
	Total, Free, Available int64  // Available: free to unprivileged users
	Inodes, InodesFree     int64
}

// fact reads one fact file, and reports a parse failure as IO_ERROR.
func (h *Host) fact(path string) (string, error) {
	data, err := h.Read(path, maxFactBytes)
	if err != nil {
		return "", err
	}
	return string(data), nil
}

func badFact(path, what string) *Error {
	return opError(KindIOError, actionRead, path, "unexpected contents: "+what)
}

// Hostname returns the host's name (a read of HostnameFile).
func (h *Host) Hostname() (string, error) {
	s, err := h.fact(HostnameFile)
	return strings.TrimSpace(s), err
}

// Kernel describes the running kernel (reads of OSReleaseFile and
// OSVersionFile, in that order; the first denial stops it).
func (h *Host) Kernel() (Kernel, error) {
	rel, err := h.fact(OSReleaseFile)
	if err != nil {
		return Kernel{}, err
	}
	ver, err := h.fact(OSVersionFile)
	if err != nil {
		return Kernel{}, err
	}
	return Kernel{Name: "Linux", Release: strings.TrimSpace(rel), Version: strings.TrimSpace(ver)}, nil
}

// Uptime returns the seconds since boot (a read of UptimeFile).
func (h *Host) Uptime() (float64, error) {
	s, err := h.fact(UptimeFile)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(s)
	if len(f) < 1 {
		return 0, badFact(UptimeFile, "no fields")
	}
	v, perr := strconv.ParseFloat(f[0], 64)
	if perr != nil {
		return 0, badFact(UptimeFile, perr.Error())
	}
	return v, nil
}

// Load returns the load averages (a read of LoadavgFile).
func (h *Host) Load() (Load, error) {
	s, err := h.fact(LoadavgFile)
	if err != nil {
		return Load{}, err
	}
	// "0.52 0.58 0.59 2/1021 12345"
	f := strings.Fields(s)
	if len(f) < 4 {
		return Load{}, badFact(LoadavgFile, "fewer than 4 fields")
	}
	var l Load
	for i, p := range []*float64{&l.Load1, &l.Load5, &l.Load15} {
		v, perr := strconv.ParseFloat(f[i], 64)
		if perr != nil {
			return Load{}, badFact(LoadavgFile, perr.Error())
		}
		*p = v
	}
	run, total, ok := strings.Cut(f[3], "/")
	var e1, e2 error
	l.Running, e1 = strconv.ParseInt(run, 10, 64)
	l.Total, e2 = strconv.ParseInt(total, 10, 64)
	if !ok || e1 != nil || e2 != nil {
		return Load{}, badFact(LoadavgFile, "bad task counts "+strconv.Quote(f[3]))
	}
	return l, nil
}

// Memory returns the system's memory (a read of MeminfoFile).
func (h *Host) Memory() (Memory, error) {
	s, err := h.fact(MeminfoFile)
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	fields := map[string]*int64{
		"MemTotal": &m.Total, "MemFree": &m.Free, "MemAvailable": &m.Available,
		"SwapTotal": &m.SwapTotal, "SwapFree": &m.SwapFree,
	}
	for _, line := range strings.Split(s, "\n") {
		// "MemTotal:       16318128 kB"
		k, v, ok := strings.Cut(line, ":")
		p := fields[k]
		if !ok || p == nil {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return Memory{}, badFact(MeminfoFile, "no value for "+k)
		}
		n, perr := strconv.ParseInt(f[0], 10, 64)
		if perr != nil {
			return Memory{}, badFact(MeminfoFile, perr.Error())
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		*p = n
	}
	if m.Total == 0 {
		return Memory{}, badFact(MeminfoFile, "no MemTotal")
	}
	return m, nil
}

// Disk returns the usage of the file system that holds path (action
// "stat" on path; symlinks followed, the target authorized), from statfs
// on the pinned object.
func (h *Host) Disk(path string) (Disk, error) {
	p, err := h.begin(actionStat, path, nil)
	if err != nil {
		return Disk{}, err
	}
	defer p.close()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(p.fd, &fs); err != nil {
		return Disk{}, sysError(actionStat, p.path, err)
	}
	bsize := fs.Frsize
	if bsize <= 0 {
		bsize = fs.Bsize
	}
	return Disk{
		Path:       p.path,
		Total:      int64(fs.Blocks) * bsize,
		Free:       int64(fs.Bfree) * bsize,
		Available:  int64(fs.Bavail) * bsize,
		Inodes:     int64(fs.Files),
		InodesFree: int64(fs.Ffree),
	}, nil
}
