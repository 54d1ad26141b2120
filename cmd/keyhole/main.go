// Command keyhole is an SSH server whose sessions run Starlark scripts under
// Cedar policy, and the tools around it.
//
// Messages rule: everything the CLI says to a person goes to stderr as
// "keyhole: error: …", optionally followed by "keyhole: hint: …", in lower
// case without a trailing period. Only requested output goes to stdout:
// that includes the usage text that "--help" (or "-h", or "help") asks
// for, which exits 0. A usage error exits 2 with a hint that names the
// help of the command it came from ("keyhole ca sign --help").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

const usage = `usage: keyhole <command> [flags]

commands:
  serve --config FILE   run the SSH server (--check-config FILE: check a layout, listen on nothing)
  dev                   run a throwaway server with an example policy, no set-up
  policy                validate, check, test and explain a policy directory
  ca                    run a certificate authority: init, sign, revoke
  run                   run a script on one host or many (keyhole's client)
  push                  push files to one host or many through sftp, skipping those already there
  mcp                   serve an agent over MCP (stdio): run_script, list_hosts
  version               print the version

run "keyhole <command> --help" for a command's flags
`

// version is set at build time with -ldflags "-X main.version=…"; left
// "dev", the module version from the build information is used.
var version = "dev"

// versionLine describes the build: "keyhole VERSION (MODULE, revision REV
// [, modified][, TIME], GOVERSION)". info may be nil.
func versionLine(version string, info *debug.BuildInfo) string {
	if info == nil {
		info = &debug.BuildInfo{}
	}
	v := version
	if v == "dev" || v == "" {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	module := info.Main.Path
	if module == "" {
		module = "github.com/keyhole-dev/keyhole"
	}
	parts := []string{module, "revision unknown"}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			parts[1] = "revision " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				parts = append(parts, "modified")
			}
		case "vcs.time":
			parts = append(parts, s.Value)
		}
	}
	if info.GoVersion != "" {
		parts = append(parts, info.GoVersion)
	}
	return fmt.Sprintf("keyhole %s (%s)", v, strings.Join(parts, ", "))
}

func main() { os.Exit(mainExit()) }

func mainExit() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// usageError is an error caused by how the command was called; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// run runs the command args; a server runs until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = inCommand("serve", cmdServe(ctx, args[1:], stdout, stderr))
	case "dev":
		err = inCommand("dev", cmdDev(ctx, args[1:], stdout, stderr))
	case "policy":
		err = inCommand("policy", cmdPolicy(ctx, args[1:], stdout, stderr))
	case "ca":
		err = inCommand("ca", cmdCA(args[1:], stdout, stderr))
	case "run":
		return runExit(cmdRun(ctx, args[1:], os.Stdin, stdout, stderr), stderr)
	case "push":
		return pushExit(cmdPush(ctx, args[1:], stdout, stderr), stderr)
	case "mcp":
		err = inCommand("mcp", cmdMCP(ctx, args[1:], os.Stdin, stdout, stderr))
	case "worker": // hidden: the per-script worker process the server starts
		return cmdWorker(args[1:], stderr)
	case "version", "--version":
		info, _ := debug.ReadBuildInfo()
		fmt.Fprintln(stdout, versionLine(version, info))
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = &usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	return report(err, stderr)
}

// report prints err by the messages rule and returns the exit status.
func report(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var es exitStatus
	if errors.As(err, &es) {
		return int(es)
	}
	fmt.Fprintf(stderr, "keyhole: error: %v\n", err)
	var h *hinted
	if errors.As(err, &h) {
		fmt.Fprintf(stderr, "keyhole: hint: %s\n", h.hint)
	}
	var u *usageError
	if errors.As(err, &u) {
		help := "keyhole help"
		var c *commandError
		if errors.As(err, &c) {
			help = "keyhole " + c.cmd + " --help"
		}
		fmt.Fprintf(stderr, "keyhole: hint: run %q for usage\n", help)
		return 2
	}
	return 1
}

// commandError is an error of the (sub)command cmd, such as "ca sign":
// the usage hint names that command's help.
type commandError struct {
	cmd string
	err error
}

func (c *commandError) Error() string { return c.err.Error() }
func (c *commandError) Unwrap() error { return c.err }

// inCommand marks a usage error as cmd's, unless a subcommand of cmd
// already did.
func inCommand(cmd string, err error) error {
	var u *usageError
	var c *commandError
	if err == nil || !errors.As(err, &u) || errors.As(err, &c) {
		return err
	}
	return &commandError{cmd: cmd, err: err}
}

// exitStatus ends a command with that status and no message: the command
// has said on stdout what there is to say (policy check's "deny").
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// hinted is an error with advice for the person reading it.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// newFlagSet makes a flag set that returns errors instead of exiting and
// prints nothing itself: a parse error is reported as a usage error, and
// "--help" prints the usage to stdout (see parseOnly).
func newFlagSet(name, synopsis string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: keyhole %s\n\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseOnly parses args without checking for positional arguments. On
// "--help" it prints the usage and returns flag.ErrHelp (exit 0); flag
// errors become usage errors.
func parseOnly(fs *flag.FlagSet, args []string) error {
	printUsage := fs.Usage
	fs.Usage = func() {} // the flag package calls it on errors too
	err := fs.Parse(args)
	fs.Usage = printUsage
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage()
		return err
	case err != nil:
		return &usageError{err.Error()}
	}
	return nil
}

// parseFlags parses args, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
