package main

// "keyhole policy": validate, check, test and explain a policy directory
// without a server. Every subcommand loads the directory exactly as the
// server does (authz.Load: strict schema, unique @id), so a directory that
// passes here loads there.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
	"github.com/keyhole-dev/keyhole/starlarkrt"
)

const policyUsage = `usage: keyhole policy <subcommand> [flags]

subcommands:
  validate DIR                      check every *.cedar file in DIR against the schema
  check DIR --user U --role R --action A --resource RES [flags]
                                    print the decision for one request and the policies that made it
  test DIR TESTFILE                 run a TOML table of expected decisions (see docs/policy.md)
  explain DIR --user U --role R SCRIPT
                                    run SCRIPT without changing the host and list what it may do

run "keyhole policy <subcommand> --help" for a subcommand's flags
`

// cmdPolicy runs "keyhole policy …".
func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return &usageError{"policy needs a subcommand"}
	}
	switch args[0] {
	case "validate":
		return inCommand("policy validate", cmdPolicyValidate(args[1:], stdout, stderr))
	case "check":
		return inCommand("policy check", cmdPolicyCheck(args[1:], stdout, stderr))
	case "test":
		return inCommand("policy test", cmdPolicyTest(args[1:], stdout, stderr))
	case "explain":
		return inCommand("policy explain", cmdPolicyExplain(ctx, args[1:], stdout, stderr))
	case "help", "-h", "--help":
		fmt.Fprint(stdout, policyUsage)
		return nil
	}
	return &usageError{fmt.Sprintf("unknown policy subcommand %q", args[0])}
}

// problems is a refused policy set, one "authz: file:line: …" per problem;
// report prints each on its own "keyhole: error:" line.
type problems []string

func (p problems) Error() string { return strings.Join(p, "\nkeyhole: error: ") }

// loadPolicy loads dir as the server would, turning a refusal into one
// error line per problem.
func loadPolicy(dir string) (*authz.PolicySet, error) {
	ps, err := authz.Load(dir)
	if err != nil {
		return nil, &hinted{problems(strings.Split(err.Error(), "\n")), "a set with any problem is refused whole; fix each line above"}
	}
	return ps, nil
}

// parseArgs parses flags that may come before, between or after positional
// arguments, and checks that there are exactly len(names) positionals.
func parseArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := parseOnly(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != len(names) {
		return nil, &usageError{fmt.Sprintf("%s needs %s, got %d arguments", fs.Name(), strings.Join(names, " and "), len(pos))}
	}
	return pos, nil
}

func cmdPolicyValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy validate", "policy validate DIR", stdout)
	pos, err := parseArgs(fs, args, "DIR")
	if err != nil {
		return err
	}
	ps, err := loadPolicy(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d policies valid, version %s\n", pos[0], ps.Len(), ps.Version())
	return nil
}

// requestFlags are the flags that describe one request, shared by check
// and, as TOML keys, by test cases.
type requestFlags struct {
	user, role, action, resource, kind string
	principals, auth                   string
	sourceIP, at, session, transport   string
	args                               stringList
	absent                             bool
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (r *requestFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.user, "user", "", "user `id` (certificate key id or keys_file comment)")
	fs.StringVar(&r.role, "role", "", "`role` the session acts in (the SSH login name)")
	fs.StringVar(&r.principals, "principals", "", "comma-separated `list` of the certificate's principals (default: the role)")
	fs.StringVar(&r.auth, "auth", "certificate", "how the user authenticated: certificate or key")
	fs.StringVar(&r.action, "action", "", "`action` of the schema: read, list, write, exec, restart, …")
	fs.StringVar(&r.resource, "resource", "", "absolute `path` of a file, directory or command, or a service name")
	fs.StringVar(&r.kind, "kind", "", "resource `kind`: file, dir, command or service (default: from the action; list, mkdir and a trailing / mean dir)")
	fs.BoolVar(&r.absent, "absent", false, "the file does not exist yet (resource.exists is false)")
	fs.Var(&r.args, "arg", "an argument of the command for exec (repeat for each)")
	fs.StringVar(&r.sourceIP, "source-ip", "127.0.0.1", "client `address` (context.source_ip)")
	fs.StringVar(&r.at, "time", "", "time of the request, `RFC3339` (context.now; default: now)")
	fs.StringVar(&r.session, "session", "policy-check", "context.session_id")
	fs.StringVar(&r.transport, "transport", "script", "context.transport: script or sftp")
}

// serviceActions and the exec action take the resource as a Service or a
// Command; the rest act on files and directories.
var serviceActions = []string{"status", "start", "stop", "restart", "reload"}

// request builds the authz request the flags describe.
func (r *requestFlags) request() (authz.Request, error) {
	for _, f := range []struct{ name, v string }{{"user", r.user}, {"role", r.role}, {"action", r.action}, {"resource", r.resource}} {
		if f.v == "" {
			return authz.Request{}, fmt.Errorf("missing %s", f.name)
		}
	}
	principals := []string{r.role}
	if r.principals != "" {
		principals = strings.Split(r.principals, ",")
	}
	req := authz.Request{
		Principal: authz.Principal{UserID: r.user, Role: r.role, Principals: principals, Auth: r.auth},
		Action:    r.action,
		Context:   authz.Context{SessionID: r.session, Transport: r.transport},
	}
	ip, err := netip.ParseAddr(r.sourceIP)
	if err != nil {
		return authz.Request{}, fmt.Errorf("source ip %q is not an IP address", r.sourceIP)
	}
	req.Context.SourceIP = ip
	req.Context.Now = time.Now()
	if r.at != "" {
		if req.Context.Now, err = time.Parse(time.RFC3339, r.at); err != nil {
			return authz.Request{}, fmt.Errorf("time %q is not RFC3339 (e.g. 2026-01-05T09:30:00Z)", r.at)
		}
	}
	kind := strings.ToLower(r.kind)
	if kind == "" {
		switch {
		case r.action == "exec":
			kind = "command"
		case slices.Contains(serviceActions, r.action):
			kind = "service"
		case r.action == "list" || r.action == "mkdir" || len(r.resource) > 1 && strings.HasSuffix(r.resource, "/"):
			kind = "dir"
		default:
			kind = "file"
		}
	}
	res := r.resource
	if kind != "service" && res != "/" {
		res = strings.TrimSuffix(res, "/")
	}
	switch kind {
	case "file":
		req.Resource = authz.Resource{Kind: authz.KindFile, Path: res, Exists: !r.absent}
	case "dir":
		req.Resource = authz.Resource{Kind: authz.KindDir, Path: res, Exists: true}
	case "command":
		req.Resource = authz.Resource{Kind: authz.KindCommand, Path: res}
		req.Context.Argv = hostops.JoinArgv(append([]string{res}, r.args...))
		req.Context.Args = slices.Clone([]string(r.args))
		if req.Context.Args == nil {
			req.Context.Args = []string{}
		}
	case "service":
		req.Resource = authz.Resource{Kind: authz.KindService, Path: res}
	default:
		return authz.Request{}, fmt.Errorf("kind %q is not file, dir, command or service", r.kind)
	}
	if kind != "service" && (!path.IsAbs(res) || path.Clean(res) != res) {
		return authz.Request{}, fmt.Errorf("resource %q is not an absolute, clean path", r.resource)
	}
	return req, nil
}

func cmdPolicyCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy check", "policy check DIR --user U --role R --action A --resource RES [flags]", stdout)
	var rf requestFlags
	rf.register(fs)
	pos, err := parseArgs(fs, args, "DIR")
	if err != nil {
		return err
	}
	req, err := rf.request()
	if err != nil {
		return &usageError{"check: " + err.Error()}
	}
	ps, err := loadPolicy(pos[0])
	if err != nil {
		return err
	}
	d := ps.Decide(req)
	fmt.Fprintf(stdout, "%s\n", decisionWord(d))
	fmt.Fprintf(stdout, "request:  %s\n", describe(req))
	fmt.Fprintf(stdout, "policies: %s\n", policyList(d.Policies))
	for _, e := range d.Errors {
		fmt.Fprintf(stdout, "error:    %s\n", e)
	}
	fmt.Fprintf(stdout, "version:  %s\n", d.Version)
	if decisionWord(d) == "deny" {
		return exitStatus(1)
	}
	return nil
}

// decisionWord is "allow" or "deny"; a decision with errors denies.
func decisionWord(d authz.Decision) string {
	if d.Allow && len(d.Errors) == 0 {
		return "allow"
	}
	return "deny"
}

// policyList names the deciding policies, or says why there are none.
func policyList(ids []string) string {
	if len(ids) == 0 {
		return "(none: no policy permits it)"
	}
	return strings.Join(ids, ", ")
}

// describe is a one-line account of req.
func describe(req authz.Request) string {
	s := fmt.Sprintf("%s %s %s as User::%q in Role::%q from %s at %s", req.Action, strings.ToLower(req.Resource.Kind),
		req.Resource.Path, req.Principal.UserID, req.Principal.Role, req.Context.SourceIP, req.Context.Now.UTC().Format(time.RFC3339))
	if req.Action == "exec" {
		s += fmt.Sprintf(" argv %q", req.Context.Argv)
	}
	return s
}

func cmdPolicyExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy explain", "policy explain DIR --user U --role R SCRIPT [flags]", stdout)
	var rf requestFlags
	fs.StringVar(&rf.user, "user", "", "user `id` (certificate key id or keys_file comment)")
	fs.StringVar(&rf.role, "role", "", "`role` the session acts in (the SSH login name)")
	fs.StringVar(&rf.principals, "principals", "", "comma-separated `list` of the certificate's principals (default: the role)")
	fs.StringVar(&rf.auth, "auth", "certificate", "how the user authenticated: certificate or key")
	fs.StringVar(&rf.sourceIP, "source-ip", "127.0.0.1", "client `address` (context.source_ip)")
	fs.StringVar(&rf.at, "time", "", "time of every operation, `RFC3339` (context.now; default: the real time)")
	pos, err := parseArgs(fs, args, "DIR", "SCRIPT")
	if err != nil {
		return err
	}
	if rf.user == "" || rf.role == "" {
		return &usageError{"explain needs --user and --role"}
	}
	ip, err := netip.ParseAddr(rf.sourceIP)
	if err != nil {
		return &usageError{fmt.Sprintf("explain: source ip %q is not an IP address", rf.sourceIP)}
	}
	clock := time.Now
	if rf.at != "" {
		at, err := time.Parse(time.RFC3339, rf.at)
		if err != nil {
			return &usageError{fmt.Sprintf("explain: time %q is not RFC3339 (e.g. 2026-01-05T09:30:00Z)", rf.at)}
		}
		clock = func() time.Time { return at }
	}
	src, err := os.ReadFile(pos[1])
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	ps, err := loadPolicy(pos[0])
	if err != nil {
		return err
	}
	principals := []string{rf.role}
	if rf.principals != "" {
		principals = strings.Split(rf.principals, ",")
	}
	sum := starlarkrt.ScriptSHA256(string(src))
	mem := &audit.Memory{}
	host := &hostops.Host{
		Policy:    ps,
		Principal: authz.Principal{UserID: rf.user, Role: rf.role, Principals: principals, Auth: rf.auth},
		Context:   authz.Context{SourceIP: ip, SessionID: "policy-explain", ScriptSHA256: sum, Transport: "script"},
		Audit:     mem,
		Event:     audit.Event{Session: "policy-explain", User: rf.user, Role: rf.role, Transport: "script", ScriptSHA256: sum},
		Clock:     clock,
		DryRun:    true,
	}
	var out strings.Builder
	res := starlarkrt.Run(ctx, path.Base(pos[1]), string(src), starlarkrt.Options{Host: host, Stdout: &out, MaxOutput: 1 << 20})
	printExplain(stdout, mem.Events(), ps.Version(), &res, out.String())
	return nil
}

// printExplain writes the table of operations a dry run attempted, then a
// summary, the script's end and its output.
func printExplain(w io.Writer, events []audit.Event, version string, res *starlarkrt.Result, output string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DECISION\tACTION\tRESOURCE\tPOLICIES\tREASON")
	allowed, denied := 0, 0
	for _, e := range events {
		if e.Event != audit.Decision {
			continue
		}
		if e.Decision == "allow" {
			allowed++
		} else {
			denied++
		}
		pol := strings.Join(e.Policies, ",")
		if pol == "" {
			pol = "-"
		}
		reason := e.Reason
		if reason == "" {
			reason = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Decision, e.Action, e.Resource, pol, reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d operations: %d allowed, %d denied (dry run: nothing was written or run; policy version %s)\n",
		allowed+denied, allowed, denied, version)
	if res.Err != nil {
		fmt.Fprintf(w, "script: exit %d, %s: %s\n", res.Exit, res.Err.Kind, res.Err.Message)
	} else {
		fmt.Fprintf(w, "script: exit %d\n", res.Exit)
	}
	if output != "" {
		fmt.Fprintf(w, "output:\n%s", output)
		if !strings.HasSuffix(output, "\n") {
			fmt.Fprintln(w)
		}
	}
}
