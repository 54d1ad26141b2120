package main

// keyhole run over several hosts. Output, by default, is each host's
// lines prefixed with its name ("web01: …") as the host ends, its error
// on stderr ("web03: ACCESS_DENIED: …"); --group prints identical
// outputs once, after the run, with their hosts; --json prints one JSON
// line per host as it ends. A summary by outcome goes to stderr. The
// exit status: 0 every host ok, 3 some not (client.ExitSomeFailed), 4
// nothing could start (client.ExitCouldNotStart), 2 a usage error. A
// progress bar is drawn on stderr when it is a terminal, never when it
// is piped.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/schollz/progressbar/v3"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/client/inventory"
)

// targetSource is where the fan-out's hosts come from: destinations on
// the command line and a --hosts file, or an inventory and its --limit
// pattern.
type targetSource struct {
	dests     []string // destinations on the command line
	hostsFile string   // --hosts
	inventory string   // --inventory
	limit     string   // --limit; "" means all
}

// targets returns the destinations, then the hosts file's, each once in
// the order first given; or the inventory's hosts the limit selects, in
// inventory order.
func (s targetSource) targets(login string) ([]client.Target, error) {
	if s.inventory != "" {
		return s.inventoryTargets(login)
	}
	dests := append([]string(nil), s.dests...)
	if s.hostsFile != "" {
		lines, err := readHostsFile(s.hostsFile)
		if err != nil {
			return nil, err
		}
		dests = append(dests, lines...)
	}
	var out []client.Target
	seen := map[string]bool{}
	for _, d := range dests {
		t, err := client.ParseTarget(d)
		if err != nil {
			return nil, err
		}
		if t.User == "" {
			t.User = login
		}
		if seen[t.Name] {
			continue
		}
		seen[t.Name] = true
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no hosts in %s", s.hostsFile)
	}
	return out, nil
}

// inventoryTargets loads the inventory and maps the hosts the limit
// selects to targets: named by their inventory name (what --failed-to
// writes and --limit @FILE reads), dialed at ansible_host and
// ansible_port, as ansible_user (else -l), through their ProxyJump (else
// -J).
func (s targetSource) inventoryTargets(login string) ([]client.Target, error) {
	inv, err := inventory.Load(s.inventory)
	if err != nil {
		return nil, err
	}
	limit := s.limit
	if limit == "" {
		limit = "all"
	}
	hosts, err := inv.Select(limit)
	if err != nil {
		return nil, err
	}
	out := make([]client.Target, 0, len(hosts))
	for _, h := range hosts {
		t := client.Target{Name: h.Name, Addr: h.Addr, Port: h.Port, User: h.User, Jump: h.Jump}
		if t.User == "" {
			t.User = login
		}
		out = append(out, t)
	}
	return out, nil
}

// listHosts prints the hosts a run would go to, as ansible --list-hosts
// does, and runs nothing.
func listHosts(w io.Writer, targets []client.Target) {
	fmt.Fprintf(w, "  hosts (%d):\n", len(targets))
	for _, t := range targets {
		fmt.Fprintf(w, "    %s\n", displayLines(t.String())[0])
	}
}

// readHostsFile reads a plain host list: one destination a line; blank
// lines and # comments are skipped.
func readHostsFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			return nil, fmt.Errorf("hosts: %s:%d: %q is an inventory's group header: --hosts takes a plain list of destinations", path, n, line)
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("hosts: %s:%d: one destination a line, got %q", path, n, line)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hosts: %s: %w", path, err)
	}
	return out, nil
}

func runFleet(ctx context.Context, rf *runFlags, cfg client.Config, dests []string, script string, args map[string]any, stdout, stderr io.Writer) error {
	if rf.group && rf.asJSON {
		return &usageError{"--group and --json do not go together"}
	}
	src := targetSource{dests: dests, hostsFile: rf.hosts, inventory: rf.inventory, limit: rf.limit}
	targets, err := src.targets(rf.login)
	if err != nil {
		return &startError{err}
	}
	if rf.listHosts {
		w := bufio.NewWriter(stdout)
		listHosts(w, targets)
		return w.Flush()
	}
	d, err := client.NewDialer(cfg)
	if err != nil {
		return &startError{err}
	}
	defer d.Close()

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	var mu sync.Mutex // the bar and the output, written from Done
	bar := newBar(stderr, len(targets))
	failed := 0
	done := func(r client.HostResult) {
		mu.Lock()
		defer mu.Unlock()
		if r.Outcome != client.OK {
			failed++
		}
		switch {
		case rf.asJSON:
			b, _ := json.Marshal(r)
			out.Write(append(b, '\n'))
		case rf.group:
		default:
			if bar != nil {
				bar.Clear()
			}
			printHost(out, stderr, r)
		}
		out.Flush()
		if bar != nil {
			bar.Describe(fmt.Sprintf("failed %d", failed))
			bar.Add(1)
		}
	}
	results := d.FanOut(ctx, targets, script, client.FanOutOptions{
		Args: args, Parallel: rf.parallel, RunTimeout: rf.timeout, Done: done, DryRun: rf.dryRun,
	})
	if bar != nil {
		bar.Finish()
		bar.Clear()
		fmt.Fprintln(stderr)
	}
	if rf.group {
		printGroups(out, results)
		out.Flush()
	}
	sum := client.Summarize(results)
	fmt.Fprintf(stderr, "keyhole: %s\n", sum)
	if err := writeFailedTo(rf.failedTo, sum.Failed, stderr); err != nil {
		return err
	}
	if st := sum.ExitStatus(); st != 0 {
		return exitStatus(st)
	}
	return nil
}

// writeFailedTo writes the names of the failed hosts to path, one a line,
// for --limit @path; nothing when path is "". A file that cannot be
// written is said on stderr and makes the run "some hosts failed".
func writeFailedTo(path string, failed []client.Target, stderr io.Writer) error {
	if path == "" {
		return nil
	}
	var b strings.Builder
	for _, t := range failed {
		b.WriteString(t.Name + "\n")
	}
	if err := writeFileAtomic(path, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintf(stderr, "keyhole: error: --failed-to: %v\n", err)
		return exitStatus(client.ExitSomeFailed)
	}
	return nil
}

// terminal returns w as a file when it is a terminal.
func terminal(w io.Writer) (*os.File, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return nil, false
	}
	fi, err := f.Stat()
	return f, err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newBar returns a progress bar on w when w is a terminal, else nil.
func newBar(w io.Writer, total int) *progressbar.ProgressBar {
	f, ok := terminal(w)
	if !ok {
		return nil
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("failed 0"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(0),
	)
}

// displayLines splits what a host sent into lines and escapes control
// characters (\x1b as "\x1b"), so that no host can print a line that
// looks like another host's, a group's header, or move the cursor.
func displayLines(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		var b strings.Builder
		for _, r := range line {
			if (r < 0x20 && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				fmt.Fprintf(&b, "\\x%02x", r)
				continue
			}
			b.WriteRune(r)
		}
		out = append(out, b.String())
	}
	return out
}

// hostLines is what a host printed and its error line, for display.
func hostLines(r client.HostResult) (output, errLines []string) {
	if r.Result != nil && r.Err == nil {
		for _, l := range r.Result.Output {
			output = append(output, displayLines(l)...)
		}
	}
	if e := r.ErrorLine(); e != "" {
		errLines = displayLines(e)
	}
	return output, errLines
}

// printHost prints one host's output prefixed with its name, and its
// error on stderr.
func printHost(out, stderr io.Writer, r client.HostResult) {
	name := r.Target.String()
	output, errLines := hostLines(r)
	for _, l := range output {
		fmt.Fprintf(out, "%s: %s\n", name, l)
	}
	if len(errLines) > 0 {
		if f, ok := out.(interface{ Flush() error }); ok {
			f.Flush()
		}
		for _, l := range errLines {
			fmt.Fprintf(stderr, "%s: %s\n", name, l)
		}
	}
}

// printGroups prints each distinct output once, indented by two spaces
// under a header line naming the hosts that gave it, largest group
// first, then in the order of the first host.
func printGroups(out io.Writer, results []client.HostResult) {
	type group struct {
		outcome client.Outcome
		lines   []string
		hosts   []string
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, r := range results {
		output, errLines := hostLines(r)
		lines := append(output, errLines...)
		key := string(r.Outcome) + "\x00" + strings.Join(lines, "\n")
		g := byKey[key]
		if g == nil {
			g = &group{outcome: r.Outcome, lines: lines}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.hosts = append(g.hosts, r.Target.String())
	}
	// Stable: largest first, ties in first-seen order.
	for i := 1; i < len(groups); i++ {
		for j := i; j > 0 && len(groups[j].hosts) > len(groups[j-1].hosts); j-- {
			groups[j], groups[j-1] = groups[j-1], groups[j]
		}
	}
	for _, g := range groups {
		n := "hosts"
		if len(g.hosts) == 1 {
			n = "host"
		}
		fmt.Fprintf(out, "---- %s (%d %s): %s\n", strings.Join(g.hosts, ","), len(g.hosts), n, g.outcome.Label())
		for _, l := range g.lines {
			fmt.Fprintln(out, "  "+l)
		}
	}
}
