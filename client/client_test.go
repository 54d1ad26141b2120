package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/outcome"
	"github.com/keyhole-dev/keyhole/sshserver"
)

func TestRunResultAndReuse(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, f.readPolicy)
	// The client connects through a proxy that counts connections.
	proxy, conns := countingProxy(t, h.Addr)
	_, pport, _ := net.SplitHostPort(proxy)
	kh := f.knownHosts(t, "known_hosts", "[127.0.0.1]:"+pport+" "+string(gossh.MarshalAuthorizedKey(h.HostKey)))
	ctx := context.Background()
	c, err := client.Dial(ctx, "logs@"+proxy, client.Config{Identities: []string{f.userKey}, KnownHosts: []string{kh}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var streamed []string
	res, err := c.RunWith(ctx, `print(fs.read(args["p"]).strip())
result({"n": args["n"] + 1})`, client.RunOptions{
		Args:  map[string]any{"p": f.sandbox + "/pub/motd", "n": 41},
		Print: func(s string) { streamed = append(streamed, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Exit != 0 || res.Error != nil || string(res.Result) != `{"n":42}` {
		t.Fatalf("result = %+v (result %s)", res, res.Result)
	}
	if strings.Join(res.Output, "|") != "hello fleet" || strings.Join(streamed, "|") != "hello fleet" {
		t.Errorf("output %q, streamed %q", res.Output, streamed)
	}
	if len(res.Decisions) != 1 || !res.Decisions[0].Allow || res.Decisions[0].Action != "read" {
		t.Errorf("decisions = %+v", res.Decisions)
	}
	// The same connection runs a second script, denied this time.
	res, err = c.Run(ctx, `fs.read("/etc/hostname")`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Exit != outcome.ExitAccessDenied || res.Error == nil || res.Error.Kind != outcome.KindAccessDenied {
		t.Fatalf("second run = %+v", res)
	}
	if d := res.Denied(); len(d) != 1 || d[0].Resource != "/etc/hostname" {
		t.Errorf("denied = %+v", d)
	}
	if client.Classify(res, nil) != client.AccessDenied {
		t.Errorf("classified %s", client.Classify(res, nil))
	}
	// Both scripts, and a third and fourth at once, went over one
	// connection.
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			res, err := c.Run(ctx, `print("again")`, nil)
			if err == nil && res.Exit != 0 {
				err = fmt.Errorf("exit %d", res.Exit)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for four scripts, want 1", n)
	}
}

// countingProxy forwards TCP connections to addr and counts them.
func countingProxy(t *testing.T, addr string) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			out, err := net.Dial("tcp", addr)
			if err != nil {
				in.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
	return ln.Addr().String(), &n
}

func TestRunErrors(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, f.readPolicy)
	kh := f.knownHosts(t, "known_hosts", h.KnownHostsLine())
	ctx := context.Background()
	c, err := client.Dial(ctx, "logs@"+h.Addr, client.Config{Identities: []string{f.userKey}, KnownHosts: []string{kh}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name, script string
		exit         int
		kind         string
		outcome      client.Outcome
	}{
		{"ok", `print("x")`, 0, "", client.OK},
		{"syntax-error", `def (`, outcome.ExitSyntaxError, outcome.KindSyntaxError, client.ScriptError},
		{"script-error", `fail("boom")`, outcome.ExitScriptError, outcome.KindScriptError, client.ScriptError},
		{"not-found", `fs.read("` + f.sandbox + `/pub/nope")`, outcome.ExitScriptError, outcome.KindNotFound, client.ScriptError},
		{"denied", `fs.read("` + f.sandbox + `/motd")`, outcome.ExitAccessDenied, outcome.KindAccessDenied, client.AccessDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Run(ctx, tc.script, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Exit != tc.exit || (tc.kind != "") != (res.Error != nil) || (res.Error != nil && res.Error.Kind != tc.kind) {
				t.Fatalf("got exit %d error %+v", res.Exit, res.Error)
			}
			if got := client.Classify(res, nil); got != tc.outcome {
				t.Errorf("outcome %s, want %s", got, tc.outcome)
			}
		})
	}
}

func TestHostKeys(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, f.readPolicy)
	other, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	wrongLine := "[" + h.Host + "]:" + h.Port + " " + string(gossh.MarshalAuthorizedKey(other.PublicKey()))
	hostCA, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// A second server presenting a host certificate from hostCA.
	plain, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	hc, err := keys.SignHostCert(hostCA, keys.CertRequest{Key: plain.PublicKey(), KeyID: "h", Principals: []string{"127.0.0.1"}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	certSigner, err := gossh.NewCertSigner(hc, plain)
	if err != nil {
		t.Fatal(err)
	}
	ch := testenv.StartHost(t, testenv.HostOptions{CAPub: f.caPub, Policy: f.readPolicy, Audit: f.audit, HostSigner: certSigner})
	caLine := "@cert-authority [127.0.0.1]:" + ch.Port + " " + string(gossh.MarshalAuthorizedKey(hostCA.PublicKey()))
	otherCA, _, _ := keys.GenerateKey()
	fp := gossh.FingerprintSHA256(h.HostKey)
	for _, tc := range []struct {
		name  string
		addr  string
		lines []string
		want  client.Outcome
		msg   string
	}{
		{"known", h.Addr, []string{h.KnownHostsLine()}, client.OK, ""},
		{"mismatch", h.Addr, []string{wrongLine}, client.HostKeyMismatch, "host key mismatch for [127.0.0.1]:" + h.Port + ": the server presented ssh-ed25519 " + fp},
		{"unknown", h.Addr, []string{"[127.0.0.1]:1 " + string(gossh.MarshalAuthorizedKey(other.PublicKey()))}, client.HostKeyUnknown, "host [127.0.0.1]:" + h.Port + " is not known: its ssh-ed25519 key is " + fp},
		{"revoked", h.Addr, []string{h.KnownHostsLine(), "@revoked * " + string(gossh.MarshalAuthorizedKey(h.HostKey))}, client.HostKeyMismatch, "is revoked"},
		{"cert-authority", ch.Addr, []string{caLine}, client.OK, ""},
		{"cert-authority-wildcard", ch.Addr, []string{"@cert-authority * " + string(gossh.MarshalAuthorizedKey(hostCA.PublicKey()))}, client.OK, ""},
		// A pattern without a port names port 22 only, as in OpenSSH.
		{"cert-authority-port-22", ch.Addr, []string{"@cert-authority 127.0.0.1 " + string(gossh.MarshalAuthorizedKey(hostCA.PublicKey()))}, client.HostKeyUnknown, "no authorities"},
		{"cert-authority-other-host", ch.Addr, []string{"@cert-authority example.com " + string(gossh.MarshalAuthorizedKey(hostCA.PublicKey()))}, client.HostKeyUnknown, "host certificate for [127.0.0.1]:" + ch.Port + " refused"},
		{"cert-authority-other-ca", ch.Addr, []string{"@cert-authority * " + string(gossh.MarshalAuthorizedKey(otherCA.PublicKey()))}, client.HostKeyUnknown, "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kh := f.knownHosts(t, "kh-"+tc.name, tc.lines...)
			c, err := client.Dial(context.Background(), "logs@"+tc.addr, client.Config{Identities: []string{f.userKey}, KnownHosts: []string{kh}, NoAgent: true})
			var res *client.Result
			if err == nil {
				res, err = c.Run(context.Background(), `print("in")`, nil)
				c.Close()
			}
			if got := client.Classify(res, err); got != tc.want {
				t.Fatalf("outcome %s, want %s (err %v)", got, tc.want, err)
			}
			if tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestDialFailures(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, f.readPolicy)
	kh := f.knownHosts(t, "known_hosts", h.KnownHostsLine())
	otherCA := testenv.NewKey(t, f.dir, "other-ca")
	refusing := testenv.StartHost(t, testenv.HostOptions{CAPub: otherCA + ".pub", Policy: f.readPolicy, Audit: f.audit})
	kh2 := f.knownHosts(t, "known_hosts2", refusing.KnownHostsLine())
	cfg := client.Config{Identities: []string{f.userKey}, KnownHosts: []string{kh}, NoAgent: true}
	_, err := client.Dial(context.Background(), "logs@"+refusing.Addr, client.Config{Identities: cfg.Identities, KnownHosts: []string{kh2}, NoAgent: true})
	var ae *client.AuthError
	if !errors.As(err, &ae) || client.Classify(nil, err) != client.AuthRefused {
		t.Errorf("refusing CA: %v", err)
	}
	_, err = client.Dial(context.Background(), "nobody@"+h.Addr, cfg)
	if client.Classify(nil, err) != client.AuthRefused {
		t.Errorf("login not in the certificate: %v", err)
	}
	_, err = client.Dial(context.Background(), "logs@127.0.0.1:1", cfg)
	if client.Classify(nil, err) != client.Unreachable {
		t.Errorf("closed port: %v", err)
	}
	// A certificate beside the key that certifies another key is refused
	// before any connection.
	k2 := testenv.NewKey(t, f.dir, "k2")
	data, _ := os.ReadFile(f.userKey + "-cert.pub")
	mustWrite(t, k2+"-cert.pub", string(data))
	if _, err := client.NewDialer(client.Config{Identities: []string{k2}, KnownHosts: []string{kh}, NoAgent: true}); err == nil || !strings.Contains(err.Error(), "certifies another key") {
		t.Errorf("mismatched certificate: %v", err)
	}
	// A named identity that does not exist is an error, not skipped.
	if _, err := client.NewDialer(client.Config{Identities: []string{filepath.Join(f.dir, "nope")}, KnownHosts: []string{kh}, NoAgent: true}); err == nil {
		t.Error("missing identity accepted")
	}
	// No known_hosts at all refuses to start rather than trust anyone.
	t.Setenv("HOME", t.TempDir())
	if _, err := client.NewDialer(client.Config{Identities: []string{f.userKey}, NoAgent: true}); err == nil || !strings.Contains(err.Error(), "known_hosts") {
		t.Errorf("no known_hosts: %v", err)
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want client.Target
		bad  bool
	}{
		{in: "host", want: client.Target{Name: "host", Addr: "host"}},
		{in: "u@host:2222", want: client.Target{Name: "u@host:2222", Addr: "host", Port: 2222, User: "u"}},
		{in: "u@[::1]:22", want: client.Target{Name: "u@[::1]:22", Addr: "::1", Port: 22, User: "u"}},
		{in: "[::1]", want: client.Target{Name: "[::1]", Addr: "::1"}},
		{in: "::1", want: client.Target{Name: "::1", Addr: "::1"}},
		{in: "a@b@host", want: client.Target{Name: "a@b@host", Addr: "host", User: "a@b"}},
		{in: "@host", bad: true},
		{in: "host:0", bad: true},
		{in: "host:70000", bad: true},
		{in: "host:x", bad: true},
		{in: "-oProxyCommand=x", bad: true},
		{in: "", bad: true},
		{in: "u@", bad: true},
	} {
		got, err := client.ParseTarget(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseTarget(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

// Cancelling Run's context closes the session: Run returns at once and
// the server ends the script (its session.end is audited).
func TestRunCancelEndsScript(t *testing.T) {
	f := newFixture(t)
	h := testenv.StartHost(t, testenv.HostOptions{CAPub: f.caPub, Policy: f.readPolicy, Audit: f.audit,
		Limits: sshserver.Limits{MaxSteps: 1 << 40, MaxWall: time.Minute}})
	kh := f.knownHosts(t, "known_hosts", h.KnownHostsLine())
	c, err := client.Dial(context.Background(), "logs@"+h.Addr, client.Config{Identities: []string{f.userKey}, KnownHosts: []string{kh}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	_, err = c.RunWith(ctx, "print(\"started\")\nwhile True:\n    pass\n", client.RunOptions{Print: func(string) { cancel() }})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v after cancel", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ended := false
		for _, ev := range testenv.ReadAudit(t, f.auditPath) {
			if ev["event"] == "session.end" {
				ended = true
			}
		}
		if ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not end the script")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A run timeout is a TimeoutError, classified timed out.
	_, err = c.RunWith(context.Background(), "while True:\n    pass\n", client.RunOptions{Timeout: 200 * time.Millisecond})
	if client.Classify(nil, err) != client.TimedOut {
		t.Errorf("run timeout: %v", err)
	}
}
