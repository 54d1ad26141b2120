package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// exampleEnv is a keyhole host for the examples: a server on 127.0.0.1,
// a key with its certificate (login "logs"), a known_hosts file naming
// the server, and a sandbox whose pub/motd the policy lets "logs" read.
type exampleEnv struct {
	Addr       string // 127.0.0.1:port
	Port       int
	Key        string
	KnownHosts string
	Sandbox    string
	tb         *exampleTB
}

// startExample starts the examples' host; Stop stops it.
func startExample() *exampleEnv {
	tb := &exampleTB{}
	f := newFixture(tb)
	h := f.host(tb, f.readPolicy)
	port, _ := strconv.Atoi(h.Port)
	return &exampleEnv{Addr: h.Addr, Port: port, Key: f.userKey, Sandbox: f.sandbox,
		KnownHosts: f.knownHosts(tb, "known_hosts", h.KnownHostsLine()), tb: tb}
}

func (e *exampleEnv) Stop() { e.tb.cleanup() }

// exampleTB lets the tests' helpers build a server for an example, which
// has no *testing.T: a failure panics, and cleanups run on Stop.
type exampleTB struct {
	testing.TB
	cleanups []func()
	dirs     []string
}

func (*exampleTB) Helper()                        {}
func (*exampleTB) Name() string                   { return "example" }
func (*exampleTB) Logf(string, ...any)            {}
func (*exampleTB) Fatal(args ...any)              { panic(fmt.Sprint(args...)) }
func (*exampleTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (*exampleTB) Errorf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (*exampleTB) Skipf(format string, a ...any)  { panic(fmt.Sprintf(format, a...)) }
func (tb *exampleTB) Cleanup(f func())            { tb.cleanups = append(tb.cleanups, f) }
func (tb *exampleTB) Failed() bool                { return false }
func (tb *exampleTB) Setenv(key, value string)    { panic("example: no Setenv") }
func (tb *exampleTB) Log(args ...any)             {}
func (tb *exampleTB) Error(args ...any)           { panic(fmt.Sprint(args...)) }
func (tb *exampleTB) Skip(args ...any)            { panic(fmt.Sprint(args...)) }
func (tb *exampleTB) FailNow()                    { panic("example: FailNow") }
func (tb *exampleTB) Fail()                       { panic("example: Fail") }
func (tb *exampleTB) Skipped() bool               { return false }
func (tb *exampleTB) SkipNow()                    { panic("example: SkipNow") }
func (tb *exampleTB) Context() context.Context    { return context.Background() }
func (tb *exampleTB) Chdir(string)                { panic("example: no Chdir") }
func (tb *exampleTB) TempDir() string {
	d, err := os.MkdirTemp("", "keyhole-example-")
	if err != nil {
		panic(err)
	}
	tb.dirs = append(tb.dirs, d)
	return d
}

func (tb *exampleTB) cleanup() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
	for _, d := range tb.dirs {
		os.RemoveAll(d)
	}
}

var _ = testenv.Main // the package's TestMain makes the test binary a worker

// Connect as OpenSSH would (here with a named key, its certificate beside
// it, and a known_hosts file), run a script, and use its structured
// result; the same connection runs a second script.
func ExampleDial() {
	env := startExample()
	defer env.Stop()
	ctx := context.Background()

	c, err := client.Dial(ctx, "logs@"+env.Addr, client.Config{
		Identities: []string{env.Key},        // env.Key-cert.pub is offered first
		KnownHosts: []string{env.KnownHosts}, // unknown hosts are refused
		NoAgent:    true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	res, err := c.Run(ctx, `text = fs.read(args["path"])
print(text.strip())
result({"bytes": len(text)})`, map[string]any{"path": filepath.Join(env.Sandbox, "pub", "motd")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Exit, res.Output, string(res.Result))

	res, err = c.Run(ctx, `fs.read("/etc/shadow")`, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Exit, res.Error.Kind, client.Classify(res, nil))
	// Output:
	// 0 [hello fleet] {"bytes":12}
	// 13 ACCESS_DENIED access_denied
}

// Fan a script out to several hosts at once and summarize how each one
// ended; a closed port is one host's failure, not the run's.
func ExampleDialer_FanOut() {
	env := startExample()
	defer env.Stop()

	d, err := client.NewDialer(client.Config{
		User: "logs", Identities: []string{env.Key}, KnownHosts: []string{env.KnownHosts}, NoAgent: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	targets := []client.Target{
		{Name: "web01", Addr: "127.0.0.1", Port: env.Port},
		{Name: "web02", Addr: "127.0.0.1", Port: env.Port},
		{Name: "web03", Addr: "127.0.0.1", Port: 1}, // nothing listens
	}
	results := d.FanOut(context.Background(), targets, `print("up")`, client.FanOutOptions{Parallel: 10})
	for _, r := range results {
		fmt.Println(r.Target.Name, r.Outcome)
	}
	sum := client.Summarize(results)
	fmt.Println(sum)
	fmt.Println("exit status", sum.ExitStatus())
	// Output:
	// web01 ok
	// web02 ok
	// web03 unreachable
	// 3 hosts: 2 ok, 1 unreachable
	// exit status 3
}
