package testenv

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

// FloodStats is what a flood did.
type FloodStats struct {
	Connections int64 // TCP connections opened
	Keys        int64 // keys offered on connections that reached authentication
}

// FloodUnauthenticated opens connections to addr from the local address
// src as fast as workers goroutines can, each offering keysPerConn keys
// that the server does not know, until ctx ends. It needs no credentials:
// it is what anyone who can reach the port can do. Every connection is
// closed before it returns.
func FloodUnauthenticated(ctx context.Context, t testing.TB, addr, src string, workers, keysPerConn int) FloodStats {
	t.Helper()
	var signers []gossh.Signer
	for range keysPerConn {
		s, _, err := keys.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	cfg := &gossh.ClientConfig{
		User:            "logs",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signers...)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), // the flood does not care who answers
		Timeout:         5 * time.Second,
	}
	var conns, offered atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					continue
				}
				conns.Add(1)
				stop := context.AfterFunc(ctx, func() { c.Close() })
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				sc, _, _, err := gossh.NewClientConn(c, addr, cfg)
				if err == nil {
					sc.Close() // the server accepted an unknown key: the caller's test will see it
				} else if isAuthFailure(err) {
					offered.Add(int64(keysPerConn))
				}
				stop()
				c.Close()
			}
		}()
	}
	wg.Wait()
	return FloodStats{Connections: conns.Load(), Keys: offered.Load()}
}

func isAuthFailure(err error) bool {
	return strings.Contains(err.Error(), "unable to authenticate") || strings.Contains(err.Error(), "no supported methods remain")
}
