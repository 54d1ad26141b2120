package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// Push a file to a host over one connection: the first push uploads it
// and runs the Then script, the second finds it there and does nothing.
func ExampleClient_Push() {
	tb := &exampleTB{}
	defer tb.cleanup()
	f := newFixture(tb)
	os.MkdirAll(filepath.Join(f.sandbox, "deploy", "secrets"), 0o755)
	h := f.host(tb, testenv.LoadPolicy(tb, f.dir, "push", f.sandbox, pushPolicy))
	kh := f.knownHosts(tb, "known_hosts", h.KnownHostsLine())
	local := filepath.Join(f.dir, "app.conf")
	os.WriteFile(local, []byte("listen = 8080\n"), 0o644)
	ctx := context.Background()

	c, err := client.Dial(ctx, "logs@"+h.Addr, client.Config{Identities: []string{f.userKey}, KnownHosts: []string{kh}, NoAgent: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	file, err := client.NewPushFile(local, filepath.Join(f.sandbox, "deploy", "app.conf"))
	if err != nil {
		fmt.Println(err)
		return
	}
	mode := os.FileMode(0o640)
	for range 2 {
		res, err := c.Push(ctx, []client.PushFile{file}, client.PushOptions{Mode: &mode, Then: `print("reloaded")`})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("changed", len(res.Changed), "unchanged", len(res.Unchanged), "then ran", res.Then != nil)
	}
	fi, _ := os.Stat(file.Remote)
	fmt.Printf("%v\n", fi.Mode())
	// Output:
	// changed 1 unchanged 0 then ran true
	// changed 0 unchanged 1 then ran false
	// -rw-r-----
}
