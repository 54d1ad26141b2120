package main

// "keyhole policy test DIR TESTFILE": a TOML table of requests and the
// decisions they must get. The format (docs/policy.md, "Testing
// policies"):
//
//	[defaults]                 # optional: any case key, used when a case omits it
//	user = "agent-7"
//	role = "logs"
//
//	[[case]]
//	name = "on-call reads the app log"   # required, unique
//	action = "read"
//	resource = "/var/log/app/a.log"
//	expect = "allow"                     # required: "allow" or "deny"
//	policies = ["logs-read"]             # optional: exactly these decided
//
// Case keys: name, user, role, principals (list), auth, action, resource,
// kind, absent, args (list), source_ip, time (RFC3339), expect, policies.

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// testCase is one [[case]] (or the [defaults]) of a test file. Pointers
// tell "not set" from the zero value, so defaults apply only to unset keys.
type testCase struct {
	Name       string    `toml:"name"`
	User       *string   `toml:"user"`
	Role       *string   `toml:"role"`
	Principals *[]string `toml:"principals"`
	Auth       *string   `toml:"auth"`
	Action     *string   `toml:"action"`
	Resource   *string   `toml:"resource"`
	Kind       *string   `toml:"kind"`
	Absent     *bool     `toml:"absent"`
	Args       *[]string `toml:"args"`
	SourceIP   *string   `toml:"source_ip"`
	Time       *string   `toml:"time"`
	Expect     string    `toml:"expect"`
	Policies   *[]string `toml:"policies"`
}

// testFile is a whole test file.
type testFile struct {
	Defaults testCase   `toml:"defaults"`
	Cases    []testCase `toml:"case"`
}

// withDefaults returns c with every unset key taken from d.
func (c testCase) withDefaults(d testCase) testCase {
	pick := func(v, def *string) *string {
		if v != nil {
			return v
		}
		return def
	}
	pickList := func(v, def *[]string) *[]string {
		if v != nil {
			return v
		}
		return def
	}
	c.User, c.Role, c.Auth = pick(c.User, d.User), pick(c.Role, d.Role), pick(c.Auth, d.Auth)
	c.Action, c.Resource, c.Kind = pick(c.Action, d.Action), pick(c.Resource, d.Resource), pick(c.Kind, d.Kind)
	c.SourceIP, c.Time = pick(c.SourceIP, d.SourceIP), pick(c.Time, d.Time)
	c.Principals, c.Args, c.Policies = pickList(c.Principals, d.Principals), pickList(c.Args, d.Args), pickList(c.Policies, d.Policies)
	if c.Absent == nil {
		c.Absent = d.Absent
	}
	if c.Expect == "" {
		c.Expect = d.Expect
	}
	return c
}

// flags turns a case into the request flags check uses.
func (c testCase) flags() requestFlags {
	s := func(p *string, def string) string {
		if p == nil {
			return def
		}
		return *p
	}
	rf := requestFlags{
		user: s(c.User, ""), role: s(c.Role, ""), action: s(c.Action, ""), resource: s(c.Resource, ""),
		kind: s(c.Kind, ""), auth: s(c.Auth, "certificate"), sourceIP: s(c.SourceIP, "127.0.0.1"),
		at: s(c.Time, ""), session: "policy-test", transport: "script",
	}
	if c.Principals != nil {
		rf.principals = strings.Join(*c.Principals, ",")
	}
	if c.Args != nil {
		rf.args = slices.Clone(*c.Args)
	}
	if c.Absent != nil {
		rf.absent = *c.Absent
	}
	return rf
}

// readTestFile decodes and checks a test file; every problem is reported.
func readTestFile(name string) (*testFile, error) {
	var tf testFile
	md, err := toml.DecodeFile(name, &tf)
	if err != nil {
		return nil, fmt.Errorf("test file %s: %w", name, err)
	}
	var errs []string
	if und := md.Undecoded(); len(und) > 0 {
		for _, k := range und {
			errs = append(errs, fmt.Sprintf("test file %s: unknown key %s", name, k))
		}
	}
	if len(tf.Cases) == 0 {
		errs = append(errs, fmt.Sprintf("test file %s: no [[case]] tables", name))
	}
	if tf.Defaults.Name != "" {
		errs = append(errs, fmt.Sprintf("test file %s: [defaults] cannot set name", name))
	}
	seen := map[string]bool{}
	for i, c := range tf.Cases {
		label := fmt.Sprintf("test file %s: case %d", name, i+1)
		if c.Name != "" {
			label += fmt.Sprintf(" (%q)", c.Name)
		}
		c = c.withDefaults(tf.Defaults)
		switch {
		case c.Name == "":
			errs = append(errs, label+": missing name")
		case seen[c.Name]:
			errs = append(errs, label+": duplicate name")
		}
		seen[c.Name] = true
		if c.Expect != "allow" && c.Expect != "deny" {
			errs = append(errs, fmt.Sprintf("%s: expect must be \"allow\" or \"deny\", got %q", label, c.Expect))
		}
		rf := c.flags()
		if _, err := rf.request(); err != nil {
			errs = append(errs, label+": "+err.Error())
		}
	}
	if len(errs) > 0 {
		return nil, problems(errs)
	}
	return &tf, nil
}

func cmdPolicyTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy test", "policy test DIR TESTFILE", stdout)
	verbose := fs.Bool("v", false, "print every case, not only failures")
	pos, err := parseArgs(fs, args, "DIR", "TESTFILE")
	if err != nil {
		return err
	}
	tf, err := readTestFile(pos[1])
	if err != nil {
		return err
	}
	ps, err := loadPolicy(pos[0])
	if err != nil {
		return err
	}
	failed := 0
	for _, c := range tf.Cases {
		c = c.withDefaults(tf.Defaults)
		rf := c.flags()
		req, _ := rf.request() // checked by readTestFile
		d := ps.Decide(req)
		got := decisionWord(d)
		var why []string
		if got != c.Expect {
			why = append(why, fmt.Sprintf("got %s, want %s", got, c.Expect))
		}
		if c.Policies != nil && !slices.Equal(sortedCopy(d.Policies), sortedCopy(*c.Policies)) {
			why = append(why, fmt.Sprintf("decided by [%s], want [%s]", strings.Join(d.Policies, ", "), strings.Join(*c.Policies, ", ")))
		}
		if len(why) == 0 {
			if *verbose {
				fmt.Fprintf(stdout, "ok    %s: %s (%s)\n", c.Name, got, policyList(d.Policies))
			}
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL  %s: %s\n", c.Name, strings.Join(why, "; "))
		fmt.Fprintf(stdout, "      request:  %s\n", describe(req))
		fmt.Fprintf(stdout, "      policies: %s\n", policyList(d.Policies))
		for _, e := range d.Errors {
			fmt.Fprintf(stdout, "      error:    %s\n", e)
		}
	}
	fmt.Fprintf(stdout, "%d cases, %d passed, %d failed (policy version %s)\n", len(tf.Cases), len(tf.Cases)-failed, failed, ps.Version())
	if failed > 0 {
		return fmt.Errorf("policy test: %d of %d cases failed", failed, len(tf.Cases))
	}
	return nil
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
