package starlarkrt_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
	"github.com/keyhole-dev/keyhole/starlarkrt"
)

// A script reaches the host only through its builtins; a denied operation
// does not happen, and catch lets the script observe the denial and go on.
// Every operation leaves one decision event.
func Example() {
	tmp, err := os.MkdirTemp("", "keyhole-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(tmp)
	dir, _ := filepath.EvalSymlinks(tmp) // policies name canonical paths
	if err := os.WriteFile(filepath.Join(dir, "a.log"), []byte("started\n"), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	policy, err := authz.LoadFiles(map[string][]byte{"logs.cedar": []byte(fmt.Sprintf(`
@id("logs-read")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::%q);
`, dir))})
	if err != nil {
		fmt.Println(err)
		return
	}
	var events audit.Memory
	host := &hostops.Host{
		Policy:    policy,
		Principal: authz.Principal{UserID: "agent-7", Role: "logs", Principals: []string{"logs"}, Auth: "certificate"},
		Context:   authz.Context{SourceIP: netip.MustParseAddr("192.0.2.1"), Transport: "script"},
		Audit:     &events,
	}
	res := starlarkrt.Run(context.Background(), "example", `
print(fs.read(args["dir"] + "/a.log").strip())
_, err = catch(fs.write, args["dir"] + "/a.log", "tampered")
print(err.kind, err.action)
result({"entries": len(fs.list(args["dir"]))})
`, starlarkrt.Options{Host: host, Stdout: os.Stdout, Args: map[string]any{"dir": dir}})
	fmt.Println("exit", res.Exit, "result", res.Value)
	for _, e := range events.Events() {
		fmt.Println(e.Action, e.Decision)
	}
	// Output:
	// started
	// ACCESS_DENIED write
	// exit 0 result map[entries:1]
	// read allow
	// write deny
	// list allow
}
