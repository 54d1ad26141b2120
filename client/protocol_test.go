package client_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/keys"
)

// fakeServer is an SSH server that answers subsystem "keyhole" with
// canned bytes and an exit status (-1: none), as a broken or hostile
// server might; it stands in for one to test what the client accepts.
func fakeServer(t *testing.T, reply string, status int) (addr string, hostLine string) {
	return fakeServerFreezing(t, reply, status, false)
}

// freezeConn swallows what it reads once frozen, as a server process
// that was stopped: nothing it is sent is answered, not even a channel's
// close; only the connection's end is seen.
type freezeConn struct {
	net.Conn
	frozen atomic.Bool
}

func (c *freezeConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if err == nil && c.frozen.Load() {
			continue
		}
		return n, err
	}
}

// fakeServerFreezing is fakeServer; with freeze, it freezes when asked
// for the subsystem instead of answering.
func fakeServerFreezing(t *testing.T, reply string, status int, freeze bool) (addr string, hostLine string) {
	t.Helper()
	hs, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &gossh.ServerConfig{PublicKeyCallback: func(gossh.ConnMetadata, gossh.PublicKey) (*gossh.Permissions, error) {
		return &gossh.Permissions{}, nil
	}}
	cfg.AddHostKey(hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			conn := &freezeConn{Conn: raw}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_, chans, reqs, err := gossh.NewServerConn(conn, cfg)
				if err != nil {
					return
				}
				go gossh.DiscardRequests(reqs)
				for nc := range chans {
					ch, creqs, err := nc.Accept()
					if err != nil {
						return
					}
					for r := range creqs {
						if freeze {
							conn.frozen.Store(true) // and never reply
							continue
						}
						r.Reply(r.Type == "subsystem", nil)
						if r.Type != "subsystem" {
							continue
						}
						_, _ = io.ReadAll(io.LimitReader(ch, 1<<16))
						_, _ = io.WriteString(ch, reply)
						if status >= 0 {
							var b [4]byte
							binary.BigEndian.PutUint32(b[:], uint32(status))
							_, _ = ch.SendRequest("exit-status", false, b[:])
						}
						ch.Close()
						break
					}
				}
			}()
		}
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln.Addr().String(), "[" + host + "]:" + port + " " + string(gossh.MarshalAuthorizedKey(hs.PublicKey()))
}

func TestRunProtocolErrors(t *testing.T) {
	f := newFixture(t)
	const end0 = `{"exit":0,"result":null,"error":null,"stats":{}}` + "\n"
	for _, tc := range []struct {
		name, reply string
		status      int
		maxOutput   int64
		wantErr     string // "" means no error
	}{
		{"good", `{"print":"hi"}` + "\n" + end0, 0, 0, ""},
		{"no-end-line", `{"print":"hi"}` + "\n", 0, 0, "without an end line"},
		{"bad-json", "not json\n" + end0, 0, 0, "bad event line"},
		{"unknown-event", `{"surprise":1}` + "\n" + end0, 0, 0, "no known kind"},
		{"two-kinds", `{"print":"x","exit":0}` + "\n" + end0, 0, 0, "several kinds"},
		{"data-after-end", end0 + `{"print":"late"}` + "\n", 0, 0, "after the end line"},
		{"status-contradicts", end0, 13, 0, "exit status 13, end line says 0"},
		{"error-without-kind", `{"exit":13,"result":null,"error":{"kind":""},"stats":{}}` + "\n", 13, 0, "end line with exit 13"},
		{"unknown-exit", `{"exit":7,"result":null,"error":{"kind":"X"},"stats":{}}` + "\n", 7, 0, "end line with exit 7"},
		{"ok-with-error", `{"exit":0,"result":null,"error":{"kind":"ACCESS_DENIED"},"stats":{}}` + "\n", 0, 0, "end line with exit 0"},
		{"too-much-output", strings.Repeat(`{"print":"xxxxxxxxxxxxxxxxxxxxxxxx"}`+"\n", 200) + end0, 0, 1000, "more than 1000 bytes"},
		{"no-exit-status", end0, -1, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, line := fakeServer(t, tc.reply, tc.status)
			kh := f.knownHosts(t, "kh-"+tc.name, line)
			c, err := client.Dial(context.Background(), "logs@"+addr, client.Config{Identities: []string{f.userKey},
				KnownHosts: []string{kh}, NoAgent: true, MaxOutput: tc.maxOutput})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := c.Run(ctx, `print("hi")`, nil)
			if tc.wantErr == "" {
				if err != nil || res.Exit != 0 {
					t.Fatalf("err %v, result %+v", err, res)
				}
				return
			}
			var pe *client.ProtocolError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want a protocol error saying %q", err, tc.wantErr)
			}
			if client.Classify(res, err) != client.InternalError {
				t.Errorf("outcome %s", client.Classify(res, err))
			}
		})
	}
}

// A server that stops answering mid-run cannot hold Run past its timeout:
// the session is closed, and then, the server not letting go, the
// connection.
func TestRunFrozenServer(t *testing.T) {
	f := newFixture(t)
	addr, line := fakeServerFreezing(t, "", 0, true)
	kh := f.knownHosts(t, "kh", line)
	c, err := client.Dial(context.Background(), "logs@"+addr, client.Config{Identities: []string{f.userKey},
		KnownHosts: []string{kh}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.RunWith(context.Background(), `print(1)`, client.RunOptions{Timeout: 200 * time.Millisecond})
	if client.Classify(nil, err) != client.TimedOut {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run returned after %v", d)
	}
}
