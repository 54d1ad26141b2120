package main

// keyhole run: a script on one host, as ssh would run it, or on many.
//
// One destination (and no --hosts): the script's prints go to stdout as
// they come, its error to stderr as "KIND: message", and keyhole exits
// with the script's status (0, 1, 2, 13, 124, 125), or 255 when no script
// ran (the host could not be reached, refused the login or the host key,
// the run timed out, or nothing could start), as ssh does.
//
// Several destinations, --hosts or --inventory: a fan-out; see runFleet.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/keyhole-dev/keyhole/client"
)

const runSynopsis = `run [flags] (-e CODE | SCRIPT) DEST...
       run [flags] (-e CODE | SCRIPT) --inventory FILE [--limit PATTERN]

DEST is [user@]host[:port]. SCRIPT is a file ("-" for stdin). Flags may come
before or after the destinations.

One destination: prints go to stdout, the error to stderr as "KIND: message",
and the exit status is the script's: 0 ok, 1 script error, 2 syntax error,
13 access denied, 124 limit exceeded, 125 internal; 255 when no script ran
(the host could not be reached, refused the login or its host key, or
nothing could start).

--inventory reads an Ansible inventory (INI, YAML or a plain list) and
--limit selects its hosts with Ansible's patterns (default all; @FILE reads
a --failed-to file); --list-hosts prints the hosts selected and runs nothing.

Several destinations, --hosts or --inventory: output prefixed by host (or --group, or
--json), a summary on stderr, and the exit status 0 when every host ended
ok, 3 when some did not, 4 when nothing could start, 2 on a usage error.`

// exitConnect is the exit status of a single-host run whose host could
// not be reached, or refused the login or its host key (as ssh's 255).
const exitConnect = 255

type runFlags struct {
	connectFlags
	args                       stringList
	code, hosts                string
	failedTo, inventory, limit string
	asJSON, group              bool
	listHosts                  bool
	dryRun                     bool
	parallel                   int
	timeout                    time.Duration
}

// connectFlags are the flags of how to connect, which run, push and mcp
// share: identities, known hosts, bastions, login, agent, connect timeout.
type connectFlags struct {
	identities, knownHosts stringList
	jump, login            string
	noAgent                bool
	connectTimeout         time.Duration
}

func (r *runFlags) register(fs *flag.FlagSet) {
	r.registerConnect(fs, "login `user` for destinations that name none; default the local user")
	fs.StringVar(&r.code, "e", "", "the script's `code`, instead of a SCRIPT file")
	fs.Var(&r.args, "arg", "script argument `key=value` (repeatable), a string in args")
	fs.BoolVar(&r.asJSON, "json", false, "print the structured result (one JSON line per host over several hosts)")
	fs.StringVar(&r.hosts, "hosts", "", "`file` of destinations, one a line (# comments); makes a fan-out")
	fs.IntVar(&r.parallel, "f", client.DefaultParallel, "hosts run at once (`N`)")
	fs.DurationVar(&r.timeout, "timeout", 0, "bound on each script's run; 0 means none on one host, 5m over several")
	fs.BoolVar(&r.group, "group", false, "print identical outputs once, with their hosts")
	fs.StringVar(&r.failedTo, "failed-to", "", "write the hosts that did not end ok to `file`, one a line")
	fs.StringVar(&r.inventory, "inventory", "", "Ansible inventory `file` (INI, YAML or a plain list); makes a fan-out")
	fs.StringVar(&r.limit, "limit", "all", "Ansible host `pattern` selecting the inventory's hosts; @FILE reads a --failed-to file")
	fs.BoolVar(&r.listHosts, "list-hosts", false, "print the hosts selected and run nothing")
	fs.BoolVar(&r.dryRun, "dry-run", false, "authorize and audit every operation, read, and change nothing (no write, program or service action)")
}

// registerConnect registers the connect flags; loginHelp is -l's usage.
func (r *connectFlags) registerConnect(fs *flag.FlagSet, loginHelp string) {
	fs.Var(&r.identities, "i", "private key `file` (repeatable); its certificate <file>-cert.pub is used too; default ~/.ssh/id_ed25519, id_ecdsa, id_rsa")
	fs.StringVar(&r.jump, "J", "", "ProxyJump `chain`: [user@]host[:port][,…] of OpenSSH bastions")
	fs.Var(&r.knownHosts, "known-hosts", "known_hosts `file` (repeatable); default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts")
	fs.StringVar(&r.login, "l", "", loginHelp)
	fs.BoolVar(&r.noAgent, "no-agent", false, "do not use the ssh-agent at SSH_AUTH_SOCK")
	fs.DurationVar(&r.connectTimeout, "connect-timeout", client.DefaultConnectTimeout, "bound on each TCP connection and SSH handshake")
}

// clientConfig is the client configuration the connect flags give.
func (r *connectFlags) clientConfig() client.Config {
	return client.Config{
		Identities: r.identities, KnownHosts: r.knownHosts, NoAgent: r.noAgent,
		Jump: r.jump, ConnectTimeout: r.connectTimeout,
	}
}

// parseInterleaved parses flags that may come before or after the
// positional arguments; "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseOnly(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// The flag package stops at "--" (consumed) or at a positional.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func cmdRun(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var rf runFlags
	fs := newFlagSet("run", runSynopsis, stdout)
	rf.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["limit"] && rf.inventory == "" {
		return &usageError{"--limit selects from an --inventory; give --inventory FILE"}
	}
	if rf.inventory != "" && rf.hosts != "" {
		return &usageError{"--inventory and --hosts do not go together"}
	}
	if rf.listHosts && rf.inventory == "" && rf.hosts == "" {
		return &usageError{"--list-hosts lists the hosts of --inventory or --hosts"}
	}
	var script string
	switch {
	case set["e"]:
		script = rf.code
	case rf.listHosts:
		// The hosts are listed, nothing runs: a SCRIPT is not read.
		if len(pos) > 0 {
			pos = pos[1:]
		}
	default:
		if len(pos) == 0 {
			return &usageError{"no script: give -e CODE or a SCRIPT file"}
		}
		src := pos[0]
		pos = pos[1:]
		var b []byte
		if src == "-" {
			b, err = io.ReadAll(io.LimitReader(stdin, 16<<20))
		} else {
			b, err = os.ReadFile(src)
		}
		if err != nil {
			return fleetStartError(len(pos) > 1 || rf.hosts != "" || rf.inventory != "", &hinted{fmt.Errorf("script: %w", err),
				"the script comes before the destinations; or give its code with -e"})
		}
		script = string(b)
	}
	if len(pos) == 0 && rf.hosts == "" && rf.inventory == "" {
		return &usageError{"no destination: give user@host[:port], --hosts FILE or --inventory FILE"}
	}
	if len(pos) > 0 && rf.inventory != "" {
		return &usageError{fmt.Sprintf("%q: --inventory takes no destinations; select its hosts with --limit", pos[0])}
	}
	scriptArgs := map[string]any{}
	for _, a := range rf.args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return &usageError{fmt.Sprintf("--arg %q: want key=value", a)}
		}
		if _, dup := scriptArgs[k]; dup {
			return &usageError{fmt.Sprintf("--arg %q: key given twice", k)}
		}
		scriptArgs[k] = v
	}
	if rf.parallel < 1 {
		return &usageError{fmt.Sprintf("-f %d: want at least 1", rf.parallel)}
	}
	if rf.connectTimeout <= 0 || rf.timeout < 0 {
		return &usageError{"timeouts must be positive"}
	}
	cfg := rf.clientConfig()
	fleet := len(pos) > 1 || rf.hosts != "" || rf.inventory != ""
	if fleet {
		return runFleet(ctx, &rf, cfg, pos, script, scriptArgs, stdout, stderr)
	}
	if rf.group || rf.failedTo != "" {
		return &usageError{"--group and --failed-to are for several hosts"}
	}
	return runSingle(ctx, &rf, cfg, pos[0], script, scriptArgs, stdout, stderr)
}

// fleetStartError makes err exit with client.ExitCouldNotStart in a
// fan-out; on one host it stays an error (exit 255, as ssh).
func fleetStartError(fleet bool, err error) error {
	if fleet {
		return &startError{err}
	}
	return &connectError{err}
}

// startError is a fan-out that could not start; it exits 4.
type startError struct{ err error }

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// connectError is a single-host run that did not learn the script's end;
// it exits 255.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func runSingle(ctx context.Context, rf *runFlags, cfg client.Config, dest, script string, args map[string]any, stdout, stderr io.Writer) error {
	t, err := client.ParseTarget(dest)
	if err != nil {
		return &usageError{err.Error()}
	}
	if t.User == "" {
		t.User = rf.login // -l names the destination's user, not the jump hosts'
	}
	d, err := client.NewDialer(cfg)
	if err != nil {
		return &connectError{err}
	}
	defer d.Close()
	c, err := d.Dial(ctx, t)
	if err != nil {
		return &connectError{err}
	}
	defer c.Close()
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	opts := client.RunOptions{Args: args, Timeout: rf.timeout, DryRun: rf.dryRun}
	if !rf.asJSON {
		opts.Print = func(s string) {
			out.WriteString(s)
			out.WriteByte('\n')
			out.Flush()
		}
	}
	res, err := c.RunWith(ctx, script, opts)
	if err != nil {
		return &connectError{err}
	}
	if rf.asJSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		out.Write(append(b, '\n'))
	} else if res.Error != nil {
		out.Flush()
		fmt.Fprintf(stderr, "%s: %s\n", res.Error.Kind, res.Error.Message)
	}
	if res.Exit != 0 {
		return exitStatus(res.Exit)
	}
	return nil
}

// runExit maps cmdRun's error to its exit status, printing it by the
// messages rule.
func runExit(err error, stderr io.Writer) int {
	var se *startError
	var ce *connectError
	switch {
	case errors.As(err, &se):
		report(se.err, stderr)
		return client.ExitCouldNotStart
	case errors.As(err, &ce):
		report(ce.err, stderr)
		return exitConnect
	}
	return report(inCommand("run", err), stderr)
}
