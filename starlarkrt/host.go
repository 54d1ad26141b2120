package starlarkrt

import (
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/keyhole-dev/keyhole/hostops"
)

// FactsHost is the part of Host the host module uses; *hostops.Host
// implements it.
type FactsHost interface {
	Hostname() (string, error)
	Kernel() (hostops.Kernel, error)
	Uptime() (float64, error)
	Load() (hostops.Load, error)
	Memory() (hostops.Memory, error)
	Disk(path string) (hostops.Disk, error)
}

// hostModule is the host module ("loadavg", not "load", which Starlark
// reserves): facts about the host, each authorized as
// a read of the /proc file it comes from (hostops/hostinfo.go), and disk
// usage, authorized as a stat of the path asked about.
//
//	host.hostname()  -> str                                   read /proc/sys/kernel/hostname
//	host.kernel()    -> struct(name, release, version)        read /proc/sys/kernel/{osrelease,version}
//	host.uptime()    -> float seconds                         read /proc/uptime
//	host.loadavg()   -> struct(load1, load5, load15, running, total)   read /proc/loadavg
//	host.memory()    -> struct(total, free, available, swap_total, swap_free) bytes, read /proc/meminfo
//	host.disk(path)  -> struct(path, total, free, available, inodes, inodes_free)  stat path
//	host.dry_run     -> bool: the script runs as a dry run (nothing that changes the host is done)
func hostModule(r *run) *starlarkstruct.Module {
	m := module("host", map[string]func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error){
		"hostname": r.hostHostname,
		"kernel":   r.hostKernel,
		"uptime":   r.hostUptime,
		"loadavg":  r.hostLoad,
		"memory":   r.hostMemory,
		"disk":     r.hostDisk,
	})
	m.Members["dry_run"] = starlark.Bool(isDryRun(r.opts.Host))
	return m
}

// isDryRun reports whether h is a host in dry-run mode (hostops.Host.DryRun).
func isDryRun(h Host) bool {
	hh, ok := h.(*hostops.Host)
	return ok && hh.DryRun
}

// noArgs checks that a builtin got no arguments and returns the host.
func (r *run) noArgs(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (Host, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, invalidArgument(b, err)
	}
	return r.host(b)
}

func (r *run) hostHostname(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := r.noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	name, err := h.Hostname()
	if err != nil {
		return nil, err
	}
	return starlark.String(name), nil
}

func (r *run) hostKernel(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := r.noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	k, err := h.Kernel()
	if err != nil {
		return nil, err
	}
	return starlarkstruct.FromStringDict(starlark.String("kernel"), starlark.StringDict{
		"name":    starlark.String(k.Name),
		"release": starlark.String(k.Release),
		"version": starlark.String(k.Version),
	}), nil
}

func (r *run) hostUptime(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := r.noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	up, err := h.Uptime()
	if err != nil {
		return nil, err
	}
	return starlark.Float(up), nil
}

func (r *run) hostLoad(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := r.noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	l, err := h.Load()
	if err != nil {
		return nil, err
	}
	return starlarkstruct.FromStringDict(starlark.String("load"), starlark.StringDict{
		"load1":   starlark.Float(l.Load1),
		"load5":   starlark.Float(l.Load5),
		"load15":  starlark.Float(l.Load15),
		"running": starlark.MakeInt64(l.Running),
		"total":   starlark.MakeInt64(l.Total),
	}), nil
}

func (r *run) hostMemory(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := r.noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	m, err := h.Memory()
	if err != nil {
		return nil, err
	}
	return starlarkstruct.FromStringDict(starlark.String("memory"), starlark.StringDict{
		"total":      starlark.MakeInt64(m.Total),
		"free":       starlark.MakeInt64(m.Free),
		"available":  starlark.MakeInt64(m.Available),
		"swap_total": starlark.MakeInt64(m.SwapTotal),
		"swap_free":  starlark.MakeInt64(m.SwapFree),
	}), nil
}

func (r *run) hostDisk(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	h, err := r.hostCall(b, args, kwargs, "path", &path)
	if err != nil {
		return nil, err
	}
	d, err := h.Disk(path)
	if err != nil {
		return nil, err
	}
	return starlarkstruct.FromStringDict(starlark.String("disk"), starlark.StringDict{
		"path":        starlark.String(d.Path),
		"total":       starlark.MakeInt64(d.Total),
		"free":        starlark.MakeInt64(d.Free),
		"available":   starlark.MakeInt64(d.Available),
		"inodes":      starlark.MakeInt64(d.Inodes),
		"inodes_free": starlark.MakeInt64(d.InodesFree),
	}), nil
}
