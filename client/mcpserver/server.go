package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/client/inventory"
	"github.com/keyhole-dev/keyhole/docs"
)

// Config says what a Server serves and how it connects.
type Config struct {
	// Dialer connects to the hosts; the caller closes it after the
	// server has stopped.
	Dialer *client.Dialer
	// Inventory is the fleet; nil means none, and then run_script takes
	// destinations ([user@]host[:port]) instead of patterns.
	Inventory *inventory.Inventory
	// Login is the user for hosts and destinations that name none; ""
	// means the Dialer's.
	Login string
	// Parallel is how many hosts a call runs at once; 0 means
	// client.DefaultParallel.
	Parallel int
	// Timeout bounds each host's script when the call gives no timeout;
	// 0 means client.DefaultRunTimeout.
	Timeout time.Duration
	// MaxStdout caps the printed output returned per host, in bytes; 0
	// means DefaultMaxStdout.
	MaxStdout int
	// Version is the server's version, as the initialize answer names it.
	Version string
}

// Defaults and bounds of a call.
const (
	DefaultMaxStdout = 16 << 10
	// MaxTimeout is the largest timeout a call may ask for.
	MaxTimeout = time.Hour
	// MaxScript bounds a script's size in bytes.
	MaxScript = 1 << 20
	// MaxResult bounds the JSON of one host's result, in bytes; a larger
	// one is left out (HostOutput.ResultDropped).
	MaxResult = 64 << 10
)

// Resource URIs.
const (
	ScriptsURI   = "keyhole://docs/scripts.md"
	InventoryURI = "keyhole://inventory"
)

// Server is an MCP server over a fleet.
type Server struct {
	cfg Config
	srv *mcp.Server
}

const instructions = `keyhole runs Starlark scripts on hosts over SSH. There is no shell: every host operation ` +
	`(read a file, restart a service, run an allow-listed program) is a typed call that the host authorizes ` +
	`against policy for this agent's certificate, and audits. A denied operation does not happen; it comes ` +
	`back as data (action, resource, policies), so change course from it rather than retrying. ` +
	`Use list_hosts to see the fleet, run_script to act; the script API is the resource ` + ScriptsURI + `.`

// New makes a server with the run_script and list_hosts tools and the
// resources.
func New(cfg Config) (*Server, error) {
	if cfg.Dialer == nil {
		return nil, errors.New("mcpserver: no dialer")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = client.DefaultParallel
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = client.DefaultRunTimeout
	}
	if cfg.MaxStdout <= 0 {
		cfg.MaxStdout = DefaultMaxStdout
	}
	version := cfg.Version
	if version == "" {
		version = "dev"
	}
	s := &Server{cfg: cfg}
	s.srv = mcp.NewServer(&mcp.Implementation{Name: "keyhole", Version: version},
		&mcp.ServerOptions{Instructions: instructions})

	runSchema, err := runScriptSchema()
	if err != nil {
		return nil, err
	}
	mcp.AddTool(s.srv, &mcp.Tool{
		Name:        "run_script",
		Description: runScriptDescription,
		InputSchema: runSchema,
		Annotations: &mcp.ToolAnnotations{
			Title: "Run a keyhole script on hosts",
			// A script may write files and restart services: it is not
			// read-only, may be destructive, and running it twice may act
			// twice. Its world is the fleet's hosts.
			ReadOnlyHint:    false,
			DestructiveHint: ptr(true),
			IdempotentHint:  false,
			OpenWorldHint:   ptr(true),
		},
	}, s.runScript)
	mcp.AddTool(s.srv, &mcp.Tool{
		Name:        "list_hosts",
		Description: listHostsDescription,
		Annotations: &mcp.ToolAnnotations{
			Title:          "List the inventory's hosts",
			ReadOnlyHint:   true,
			IdempotentHint: true,
			OpenWorldHint:  ptr(false),
		},
	}, s.listHosts)

	s.srv.AddResource(&mcp.Resource{
		URI:         ScriptsURI,
		Name:        "scripts",
		Title:       "keyhole script API",
		Description: "The script API: modules fs, proc, svc, host, json, args, catch, allowed, result; error kinds; limits.",
		MIMEType:    "text/markdown",
	}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: ScriptsURI, MIMEType: "text/markdown", Text: docs.Scripts}}}, nil
	})
	if cfg.Inventory != nil {
		s.srv.AddResource(&mcp.Resource{
			URI:         InventoryURI,
			Name:        "inventory",
			Title:       "Inventory",
			Description: "Every host of the inventory (name, addr, port, user, groups) and its groups, as JSON.",
			MIMEType:    "application/json",
		}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			out, err := s.hosts("all")
			if err != nil {
				return nil, err
			}
			b, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				return nil, fmt.Errorf("mcpserver: inventory: %w", err)
			}
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: InventoryURI, MIMEType: "application/json", Text: string(b)}}}, nil
		})
	}
	return s, nil
}

// MCP is the go-sdk server, to run on a transport (Run, Connect).
func (s *Server) MCP() *mcp.Server { return s.srv }

// Run serves one client on t until it disconnects or ctx ends.
func (s *Server) Run(ctx context.Context, t mcp.Transport) error { return s.srv.Run(ctx, t) }

func ptr[T any](v T) *T { return &v }

const runScriptDescription = `Run one Starlark script on each selected host, in parallel; results come per host.
hosts: an Ansible pattern over the inventory ("web", "web:&eu", "all:!db*", "web0[1:3]") or a list of patterns/host names.
The script has no shell and no imports. Modules: fs.read(path), fs.tail(path, n), fs.grep(path, pattern), fs.list(dir), fs.stat(path), fs.write(path, data), proc.run([argv...]), svc.status/restart(name), host.hostname(), json.encode/decode, args (the call's args, a dict).
print() output comes back as stdout; result(value) sets a structured result.
dry_run: true runs the script changing nothing (writes, proc.run and svc actions are authorized, audited and skipped; reads happen; host.dry_run is True) and lists every operation with allow and policies: try a change first with it.
Every operation is authorized by the host's policy. A denied one raises ACCESS_DENIED; wrap a call as value, err = catch(fn, *args) to observe it (err.kind, err.message, err.action, err.resource, err.policies) and go on. allowed(action, path) asks first.
Error kinds: ACCESS_DENIED (policy said no: do not retry, report it or take another way), NOT_FOUND, INVALID_ARGUMENT (fix the call), IO_ERROR, LIMIT_EXCEEDED (steps, time, memory, output: do less per call), SCRIPT_ERROR (a bug in the script), SYNTAX_ERROR (the message has the line), INTERNAL; and per host, when no script ran: UNREACHABLE, AUTH_REFUSED, HOST_KEY_MISMATCH, HOST_KEY_UNKNOWN, TIMED_OUT, FAILED.
Each host returns outcome, exit (0 ok, 1 script error, 2 syntax error, 13 access denied, 124 limit exceeded, 125 internal; null when no script ran), result (at most 64 KiB of JSON, else null and result_dropped), stdout (at most 16 KiB, else truncated), error, denied (every denied operation, caught or not), duration_ms. isError is set when any host did not end ok.
Full reference: resource ` + ScriptsURI + `.`

const listHostsDescription = `List the inventory's hosts that an Ansible pattern selects (default "all"): name, addr, port, user, groups; and every group of the inventory. Reads the inventory only; touches no host.`

// RunScriptInput is run_script's arguments.
type RunScriptInput struct {
	Hosts   Hosts          `json:"hosts"`
	Script  string         `json:"script" jsonschema:"the Starlark script"`
	Args    map[string]any `json:"args,omitempty" jsonschema:"the script's args: a JSON object, seen by the script as the frozen dict args"`
	Timeout float64        `json:"timeout,omitempty" jsonschema:"seconds each host's script may run (default: the server's, at most 3600)"`
	DryRun  bool           `json:"dry_run,omitempty" jsonschema:"run as a dry run: every operation is authorized and audited, reads happen, and no write, program or service action is performed; operations lists what the script would do"`
}

// Hosts is a pattern, or a list of patterns or host names.
type Hosts []string

// UnmarshalJSON takes a string or a list of strings.
func (h *Hosts) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*h = Hosts{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("hosts: want a pattern (string) or a list of strings")
	}
	*h = list
	return nil
}

// runScriptSchema is RunScriptInput's schema, with hosts a string or an
// array of strings (a union the inference cannot see).
func runScriptSchema() (*jsonschema.Schema, error) {
	sch, err := jsonschema.For[RunScriptInput](nil)
	if err != nil {
		return nil, fmt.Errorf("mcpserver: run_script schema: %w", err)
	}
	sch.Properties["hosts"] = &jsonschema.Schema{
		Description: `an Ansible pattern over the inventory ("web:&eu", "all:!db01"), or a list of patterns or host names; without an inventory, [user@]host[:port] destinations`,
		AnyOf: []*jsonschema.Schema{
			{Type: "string", MinLength: ptr(1)},
			{Type: "array", Items: &jsonschema.Schema{Type: "string", MinLength: ptr(1)}, MinItems: ptr(1)},
		},
	}
	sch.Properties["script"].MinLength = ptr(1)
	sch.Properties["timeout"].Minimum = ptr(0.0)
	sch.Properties["timeout"].Maximum = ptr(MaxTimeout.Seconds())
	return sch, nil
}

// ListHostsInput is list_hosts' arguments.
type ListHostsInput struct {
	Pattern string `json:"pattern,omitempty" jsonschema:"an Ansible pattern; default all"`
}

// HostInfo is one host of the inventory.
type HostInfo struct {
	Name   string   `json:"name"`
	Addr   string   `json:"addr"`
	Port   int      `json:"port" jsonschema:"0 means 22"`
	User   string   `json:"user" jsonschema:"empty means the server's login user"`
	Groups []string `json:"groups"`
}

// ListHostsOutput is list_hosts' result.
type ListHostsOutput struct {
	Hosts  []HostInfo `json:"hosts"`
	Groups []string   `json:"groups" jsonschema:"every group of the inventory"`
}

func (s *Server) listHosts(_ context.Context, _ *mcp.CallToolRequest, in ListHostsInput) (*mcp.CallToolResult, ListHostsOutput, error) {
	pattern := strings.TrimSpace(in.Pattern)
	if pattern == "" {
		pattern = "all"
	}
	out, err := s.hosts(pattern)
	if err != nil {
		return nil, ListHostsOutput{}, err
	}
	return nil, out, nil
}

// hosts lists the inventory's hosts that pattern selects.
func (s *Server) hosts(pattern string) (ListHostsOutput, error) {
	if s.cfg.Inventory == nil {
		return ListHostsOutput{}, errors.New("no inventory: keyhole mcp was started without --inventory; give run_script destinations ([user@]host[:port])")
	}
	sel, err := s.cfg.Inventory.Select(pattern)
	if err != nil {
		return ListHostsOutput{}, err
	}
	out := ListHostsOutput{Hosts: make([]HostInfo, 0, len(sel)), Groups: s.cfg.Inventory.Groups()}
	for _, h := range sel {
		user := h.User
		if user == "" {
			user = s.cfg.Login
		}
		groups := h.Groups
		if groups == nil {
			groups = []string{}
		}
		out.Hosts = append(out.Hosts, HostInfo{Name: h.Name, Addr: h.Addr, Port: h.Port, User: user, Groups: groups})
	}
	return out, nil
}
