package sshserver_test

import (
	"context"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/starlarkrt"
)

// BenchmarkSessionStart measures what one script session costs on an
// established connection, with the script in a worker process (back to
// back, so every session also pays for the start of its pool replacement;
// and spaced out, from a full pool), against its parts without one:
// opening a session that runs nothing, and running the same script
// in-process.
//
//	go test -run '^$' -bench SessionStart -benchtime 200x ./sshserver/
func BenchmarkSessionStart(b *testing.B) {
	client := func(pool int) *gossh.Client {
		e := testenv.Start(b, testenv.Options{Policies: map[string]string{"logs.cedar": logsPolicy}, Files: sandboxFiles, WorkerPool: pool})
		c, err := gossh.Dial("tcp", e.Addr, e.ClientConfig("logs", e.UserSigner(b)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	script := func(c *gossh.Client) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				s, err := c.NewSession()
				if err != nil {
					b.Fatal(err)
				}
				if out, err := s.Output(`print("ok")`); err != nil || string(out) != "ok\n" {
					b.Fatalf("%q %v", out, err)
				}
				s.Close()
			}
		}
	}
	c := client(0)
	b.Run("worker-script-pooled", script(c))
	b.Run("worker-script-pooled-idle", func(b *testing.B) {
		// Sessions that arrive while the pool is full, its workers
		// started and their policy preloaded: the latency one session
		// sees on a server that is not saturated. Between sessions the
		// timer stops while the pool refills.
		for b.Loop() {
			b.StopTimer()
			time.Sleep(150 * time.Millisecond)
			b.StartTimer()
			s, err := c.NewSession()
			if err != nil {
				b.Fatal(err)
			}
			if out, err := s.Output(`print("ok")`); err != nil || string(out) != "ok\n" {
				b.Fatalf("%q %v", out, err)
			}
			s.Close()
		}
	})
	b.Run("worker-script-no-pool", script(client(-1)))
	b.Run("session-without-script", func(b *testing.B) {
		for b.Loop() {
			s, err := c.NewSession()
			if err != nil {
				b.Fatal(err)
			}
			if err := s.RequestSubsystem("none"); err == nil {
				b.Fatal("subsystem none accepted")
			}
			s.Close()
		}
	})
	b.Run("in-process-script", func(b *testing.B) {
		ps, err := authz.LoadFiles(map[string][]byte{"logs.cedar": []byte(`@id("x") permit (principal, action, resource in Keyhole::Dir::"/nonexistent");`)})
		if err != nil {
			b.Fatal(err)
		}
		host := &hostops.Host{Policy: ps, Audit: audit.Discard}
		for b.Loop() {
			res := starlarkrt.Run(context.Background(), "script", `print("ok")`, starlarkrt.Options{Host: host})
			if res.Exit != 0 {
				b.Fatal(res.Err)
			}
		}
	})
}
