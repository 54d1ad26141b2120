package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// TestRunDryRun: RunOptions.DryRun asks the server for a dry run: the
// write is decided and reported, the file is not written, and the result
// says so; without it the same script writes.
func TestRunDryRun(t *testing.T) {
	f := newFixture(t)
	ps := testenv.LoadPolicy(t, f.dir, "write", f.sandbox, `@id("pub-write")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"write", Keyhole::Action::"create"],
        resource in Keyhole::Dir::"{{SANDBOX}}/pub");`)
	h := f.host(t, ps)
	kh := f.knownHosts(t, "known_hosts", h.KnownHostsLine())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "logs@"+h.Addr, client.Config{Identities: []string{f.userKey}, KnownHosts: []string{kh}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := filepath.Join(f.sandbox, "pub", "out")
	for _, dry := range []bool{true, false} {
		res, err := c.RunWith(ctx, `fs.write(args["p"], "x")
result(host.dry_run)`, client.RunOptions{Args: map[string]any{"p": out}, DryRun: dry})
		if err != nil || res.Exit != 0 {
			t.Fatalf("dry %v: %v, %+v", dry, err, res)
		}
		if res.Stats.DryRun != dry || string(res.Result) != map[bool]string{true: "true", false: "false"}[dry] {
			t.Errorf("dry %v: stats.dry_run %v, result %s", dry, res.Stats.DryRun, res.Result)
		}
		if len(res.Decisions) != 1 || res.Decisions[0].Action != "create" || !res.Decisions[0].Allow {
			t.Errorf("dry %v: decisions %+v", dry, res.Decisions)
		}
		_, err = os.Stat(out)
		if written := err == nil; written == dry {
			t.Fatalf("dry %v: file written %v", dry, written)
		}
	}
}

// TestRunDryRunIgnored: a server whose end line does not say it ran the
// script as a dry run, after operations were decided, is a protocol error:
// the caller must not take the run for a dry one.
func TestRunDryRunIgnored(t *testing.T) {
	f := newFixture(t)
	reply := `{"decision":{"action":"write","resource":"/etc/motd","allow":true,"policies":["p"]}}` + "\n" +
		`{"exit":0,"result":null,"error":null,"stats":{"allowed":1}}` + "\n"
	addr, line := fakeServer(t, reply, 0)
	kh := f.knownHosts(t, "kh", line)
	c, err := client.Dial(context.Background(), "logs@"+addr, client.Config{Identities: []string{f.userKey},
		KnownHosts: []string{kh}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.RunWith(ctx, `fs.write("/etc/motd", "x")`, client.RunOptions{DryRun: true})
	var pe *client.ProtocolError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "dry run") {
		t.Fatalf("err = %v, want a protocol error about the dry run", err)
	}
	// Without DryRun the same answer is a good one.
	if res, err := c.Run(ctx, `fs.write("/etc/motd", "x")`, nil); err != nil || res.Exit != 0 {
		t.Fatalf("real run: %v, %+v", err, res)
	}
}
