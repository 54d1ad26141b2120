package main

// keyhole mcp: the Model Context Protocol server over stdio (see
// client/mcpserver and docs/agents.md). stdout carries the protocol and
// nothing else; messages go to stderr by the messages rule.

import (
	"context"
	"fmt"
	"io"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/client/inventory"
	"github.com/keyhole-dev/keyhole/client/mcpserver"
)

const mcpSynopsis = `mcp [flags]

An MCP server on stdin/stdout for an agent: tools run_script (a script on the
hosts an Ansible pattern selects, results per host, denials as data) and
list_hosts; resources keyhole://docs/scripts.md and keyhole://inventory. It
connects as keyhole run does: -i, --known-hosts, -J, -l, --no-agent.`

// mcpFlags are keyhole mcp's flags: keyhole run's connect flags, and
// the inventory and bounds of a call.
type mcpFlags struct {
	runFlags
	inventory string
}

// parseMCPFlags parses keyhole mcp's command line.
func parseMCPFlags(args []string, stdout io.Writer) (*mcpFlags, error) {
	var mf mcpFlags
	rf := &mf.runFlags
	fs := newFlagSet("mcp", mcpSynopsis, stdout)
	rf.registerConnect(fs, "login `user` for destinations that name none; default the local user")
	fs.StringVar(&mf.inventory, "inventory", "", "Ansible inventory `file` (INI, YAML or a plain list); without it, run_script takes [user@]host[:port] destinations")
	fs.IntVar(&rf.parallel, "f", client.DefaultParallel, "hosts one call runs at once (`N`)")
	fs.DurationVar(&rf.timeout, "timeout", client.DefaultRunTimeout, "bound on each host's script when a call gives none")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return &mf, nil
}

// mcpMaxOutput caps what one host's script may send (events and
// stderr): an agent reads at most mcpserver.DefaultMaxStdout of it, and
// a call holds every host's output at once.
const mcpMaxOutput = 8 << 20

func cmdMCP(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	mf, err := parseMCPFlags(args, stdout)
	if err != nil {
		return err
	}
	rf, invPath := &mf.runFlags, mf.inventory
	if rf.parallel < 1 {
		return &usageError{fmt.Sprintf("-f %d: want at least 1", rf.parallel)}
	}
	if rf.connectTimeout <= 0 || rf.timeout <= 0 || rf.timeout > mcpserver.MaxTimeout {
		return &usageError{fmt.Sprintf("timeouts must be positive, --timeout at most %v", mcpserver.MaxTimeout)}
	}
	var inv *inventory.Inventory
	if invPath != "" {
		var err error
		if inv, err = inventory.Load(invPath); err != nil {
			return err
		}
	}
	// -l names the hosts' user (mcpserver.Config.Login), not the jump
	// hosts', as in keyhole run.
	cfg := rf.clientConfig()
	cfg.MaxOutput = mcpMaxOutput
	d, err := client.NewDialer(cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	srv, err := mcpserver.New(mcpserver.Config{
		Dialer: d, Inventory: inv, Login: rf.login, Parallel: rf.parallel, Timeout: rf.timeout, Version: version,
	})
	if err != nil {
		return err
	}
	err = srv.Run(ctx, &mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}})
	if ctx.Err() != nil {
		return nil // interrupted: the calls in flight were cancelled
	}
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
