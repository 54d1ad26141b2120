package main

// keyhole push: files to one host or many through the sftp subsystem,
// skipping those already there, then a script where something changed.
// Hosts come as for keyhole run (user@host destinations, --hosts or
// --inventory with --limit); output, summary, --json, --failed-to and
// the exit statuses are those of a run over several hosts, whatever the
// number of hosts: 0 every host ok, 3 some not, 4 nothing could start,
// 2 a usage error.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/keyhole-dev/keyhole/client"
)

const pushSynopsis = `push [flags] user@host[:port]... SRC... DEST
       push [flags] --hosts FILE SRC... DEST
       push [flags] --inventory FILE [--limit PATTERN] SRC... DEST

SRC are local regular files (a directory is refused). DEST is an absolute
path on the hosts: a directory when it ends in "/" or when several SRC are
given (each file keeps its base name), else the file's own path. Hosts on
the command line are written with their user (user@host), before the files.

On each host one script hashes the destinations (fs.sha256); the files
whose content differs are uploaded through sftp (atomic on the host), and
--then runs where something changed. A destination the policy does not let
the user read is not uploaded: the host is reported access denied.

Output: "HOST: changed PATH...", "HOST: unchanged" or errors on stderr; a
summary on stderr; exit 0 when every host ended ok, 3 when some did not,
4 when nothing could start, 2 on a usage error.`

type pushFlags struct {
	connectFlags
	args                   stringList
	hosts, failedTo        string
	inventory, limit, mode string
	then, thenCode         string
	asJSON                 bool
	parallel               int
	timeout                time.Duration
}

func (p *pushFlags) register(fs *flag.FlagSet) {
	p.registerConnect(fs, "login `user` for --hosts lines and inventory hosts that name none; default the local user")
	fs.StringVar(&p.hosts, "hosts", "", "`file` of destinations, one a line (# comments)")
	fs.IntVar(&p.parallel, "f", client.DefaultParallel, "hosts pushed to at once (`N`)")
	fs.DurationVar(&p.timeout, "timeout", 0, "bound on each host's push (hash check, uploads, --then); 0 means 5m")
	fs.StringVar(&p.failedTo, "failed-to", "", "write the hosts that did not end ok to `file`, one a line")
	fs.StringVar(&p.inventory, "inventory", "", "Ansible inventory `file` (INI, YAML or a plain list)")
	fs.StringVar(&p.limit, "limit", "all", "Ansible host `pattern` selecting the inventory's hosts; @FILE reads a --failed-to file")
	fs.BoolVar(&p.asJSON, "json", false, "print one JSON line per host")
	fs.StringVar(&p.mode, "mode", "", "permission bits (octal, at most 0777) of every file pushed; default: an existing file's mode is kept, a new file gets 0644")
	fs.StringVar(&p.then, "then", "", "script `file` run on each host where a file changed")
	fs.StringVar(&p.thenCode, "then-e", "", "the --then script's `code`")
	fs.Var(&p.args, "arg", "argument `key=value` (repeatable) of the --then script, a string in args")
}

// parseMode parses an octal mode: 644, 0644 or 0o644, at most 0777.
func parseMode(s string) (os.FileMode, error) {
	digits := strings.TrimPrefix(s, "0o")
	n, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || digits == "" || strings.HasPrefix(digits, "+") || n > 0o777 {
		return 0, fmt.Errorf("--mode %q: want octal permission bits 0 to 0777 (such as 0644)", s)
	}
	return os.FileMode(n), nil
}

// pushPlan maps the local files to their paths on the hosts.
func pushPlan(srcs []string, dest string) ([]string, error) {
	if !strings.HasPrefix(dest, "/") {
		return nil, fmt.Errorf("DEST %q: want an absolute path on the hosts", dest)
	}
	dir := strings.HasSuffix(dest, "/") || len(srcs) > 1
	clean := strings.TrimRight(dest, "/")
	if clean == "" {
		clean = "/"
	}
	if path.Clean(clean) != clean {
		return nil, fmt.Errorf("DEST %q: want a clean path (no ., .. or //)", dest)
	}
	if !dir {
		return []string{clean}, nil
	}
	out := make([]string, len(srcs))
	seen := map[string]string{}
	for i, s := range srcs {
		base := filepath.Base(s)
		if base == "." || base == ".." || base == "/" {
			return nil, fmt.Errorf("SRC %q: names no file", s)
		}
		if other, dup := seen[base]; dup {
			return nil, fmt.Errorf("SRC %q and %q both go to %s", other, s, path.Join(clean, base))
		}
		seen[base] = s
		out[i] = path.Join(clean, base)
	}
	return out, nil
}

// pushRequest is a push's command line, checked: the hosts' source, the
// local files and their paths on the hosts, and the options (the --then
// file not read yet).
type pushRequest struct {
	pf            pushFlags
	dests         []string
	srcs, remotes []string
	opts          client.PushOptions
	thenFile      string
}

// parsePush parses and checks push's arguments without touching a file
// or a host; its errors are usage errors.
func parsePush(args []string, stdout io.Writer) (*pushRequest, error) {
	req := &pushRequest{}
	pf := &req.pf
	fs := newFlagSet("push", pushSynopsis, stdout)
	pf.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["limit"] && pf.inventory == "" {
		return nil, &usageError{"--limit selects from an --inventory; give --inventory FILE"}
	}
	if pf.inventory != "" && pf.hosts != "" {
		return nil, &usageError{"--inventory and --hosts do not go together"}
	}
	if set["then"] && set["then-e"] {
		return nil, &usageError{"--then and --then-e do not go together"}
	}
	if len(pf.args) > 0 && !set["then"] && !set["then-e"] {
		return nil, &usageError{"--arg is for the --then script"}
	}
	// Destinations first: the leading user@host operands.
	var dests []string
	for len(pos) > 0 && strings.Contains(pos[0], "@") {
		if _, err := os.Lstat(pos[0]); err == nil {
			return nil, &usageError{fmt.Sprintf("%q is a local file and looks like a destination; write ./%s", pos[0], pos[0])}
		}
		dests = append(dests, pos[0])
		pos = pos[1:]
	}
	if len(dests) > 0 && pf.inventory != "" {
		return nil, &usageError{fmt.Sprintf("%q: --inventory takes no destinations; select its hosts with --limit", dests[0])}
	}
	if len(dests) == 0 && pf.hosts == "" && pf.inventory == "" {
		return nil, &usageError{"no hosts: give user@host[:port] before the files, --hosts FILE or --inventory FILE"}
	}
	if len(pos) < 2 {
		return nil, &usageError{"want SRC... DEST: the local files and their absolute path on the hosts"}
	}
	srcs, dest := pos[:len(pos)-1], pos[len(pos)-1]
	req.dests, req.srcs = dests, srcs
	req.remotes, err = pushPlan(srcs, dest)
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	opts := &req.opts
	if set["mode"] {
		m, err := parseMode(pf.mode)
		if err != nil {
			return nil, &usageError{err.Error()}
		}
		opts.Mode = &m
	}
	if pf.parallel < 1 {
		return nil, &usageError{fmt.Sprintf("-f %d: want at least 1", pf.parallel)}
	}
	if pf.connectTimeout <= 0 || pf.timeout < 0 {
		return nil, &usageError{"timeouts must be positive"}
	}
	if len(pf.args) > 0 {
		opts.ThenArgs = map[string]any{}
	}
	for _, a := range pf.args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, &usageError{fmt.Sprintf("--arg %q: want key=value", a)}
		}
		if _, dup := opts.ThenArgs[k]; dup {
			return nil, &usageError{fmt.Sprintf("--arg %q: key given twice", k)}
		}
		opts.ThenArgs[k] = v
	}
	switch {
	case set["then-e"]:
		opts.Then = pf.thenCode
		if strings.TrimSpace(opts.Then) == "" {
			return nil, &usageError{"--then-e: empty script"}
		}
	case set["then"]:
		req.thenFile = pf.then
	}
	opts.Timeout = pf.timeout
	return req, nil
}

func cmdPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	req, err := parsePush(args, stdout)
	if err != nil {
		return err
	}
	pf, srcs, remotes, opts := &req.pf, req.srcs, req.remotes, req.opts
	if req.thenFile != "" {
		b, err := os.ReadFile(req.thenFile)
		if err != nil {
			return &startError{fmt.Errorf("--then: %w", err)}
		}
		opts.Then = string(b)
	}
	files := make([]client.PushFile, len(srcs))
	var total int64
	for i, s := range srcs {
		f, err := client.NewPushFile(s, remotes[i])
		if err != nil {
			if fi, serr := os.Stat(s); serr == nil && fi.IsDir() {
				err = &hinted{fmt.Errorf("push %s: is a directory", s), "push takes files and does not recurse; name the files (a shell glob: dir/*)"}
			}
			return &startError{err}
		}
		files[i] = f
		total += f.Size
	}
	src := targetSource{dests: req.dests, hostsFile: pf.hosts, inventory: pf.inventory, limit: pf.limit}
	targets, err := src.targets(pf.login)
	if err != nil {
		return &startError{err}
	}
	d, err := client.NewDialer(pf.clientConfig())
	if err != nil {
		return &startError{err}
	}
	defer d.Close()
	return pushFleet(ctx, d, targets, files, opts, pf, total, stdout, stderr)
}

func pushFleet(ctx context.Context, d *client.Dialer, targets []client.Target, files []client.PushFile, opts client.PushOptions,
	pf *pushFlags, total int64, stdout, stderr io.Writer) error {
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	// The bar counts bytes: each host's share is the files' total, what
	// it did not upload (unchanged, failed) is added when it ends.
	bar := newBytesBar(stderr, total*int64(len(targets)))
	sent := map[string]int64{}
	hostsDone, failed := 0, 0
	describe := func() {
		bar.Describe(fmt.Sprintf("hosts %d/%d, failed %d", hostsDone, len(targets), failed))
	}
	fo := client.PushFanOutOptions{PushOptions: opts, Parallel: pf.parallel}
	if bar != nil {
		describe()
		fo.Progress = func(t client.Target, n int64) {
			sent[t.String()] += n
			bar.Add64(n)
		}
	}
	fo.Done = func(r client.PushHostResult) {
		hostsDone++
		if r.Outcome != client.OK {
			failed++
		}
		if bar != nil {
			bar.Clear()
		}
		if pf.asJSON {
			b, _ := json.Marshal(r)
			out.Write(append(b, '\n'))
		} else {
			printPushHost(out, stderr, r)
		}
		out.Flush()
		if bar != nil {
			if rest := total - sent[r.Target.String()]; rest > 0 {
				bar.Add64(rest)
			}
			describe()
		}
	}
	results := d.PushFanOut(ctx, targets, files, fo)
	if bar != nil {
		bar.Finish()
		bar.Clear()
		fmt.Fprintln(stderr)
	}
	line, sum := client.PushSummary(results)
	fmt.Fprintf(stderr, "keyhole: %s\n", line)
	if err := writeFailedTo(pf.failedTo, sum.Failed, stderr); err != nil {
		return err
	}
	if st := sum.ExitStatus(); st != 0 {
		return exitStatus(st)
	}
	return nil
}

// printPushHost prints a host's status line ("web1: changed /a /b",
// "web1: unchanged", "web1: failed after changing /a"), the --then
// script's output prefixed with the host, and the error on stderr.
func printPushHost(out *bufio.Writer, stderr io.Writer, r client.PushHostResult) {
	name := r.Target.String()
	var changed []string
	if r.Push != nil {
		for _, c := range r.Push.Changed {
			changed = append(changed, strings.Join(displayLines(c), "\\n"))
		}
	}
	switch st := r.Status(); {
	case st == "failed" && len(changed) > 0:
		fmt.Fprintf(out, "%s: failed after changing %s\n", name, strings.Join(changed, " "))
	case st == "changed":
		fmt.Fprintf(out, "%s: changed %s\n", name, strings.Join(changed, " "))
	case st == "unchanged":
		fmt.Fprintf(out, "%s: unchanged\n", name)
	}
	printHost(out, stderr, r.HostResult)
}

// newBytesBar returns a progress bar over bytes on w when w is a
// terminal, else nil.
func newBytesBar(w io.Writer, total int64) *progressbar.ProgressBar {
	f, ok := terminal(w)
	if !ok {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
	)
}

// pushExit maps cmdPush's error to its exit status.
func pushExit(err error, stderr io.Writer) int {
	var se *startError
	if errors.As(err, &se) {
		report(se.err, stderr)
		return client.ExitCouldNotStart
	}
	return report(inCommand("push", err), stderr)
}
