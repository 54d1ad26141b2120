package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// fleet is the fan-out's hosts: what each one is and the outcome it must
// give.
type fleet struct {
	targets    []client.Target
	want       map[string]client.Outcome
	knownHosts string
}

const (
	fleetSize   = 50
	fleetDeny   = "deny"   // policy forbids the read
	fleetClosed = "closed" // a port nobody listens on
	fleetStall  = "stall"  // the worker never answers: the run timeout ends it
	fleetWrong  = "wrong"  // known_hosts holds another key
	fleetRefuse = "refuse" // trusts another user CA
	fleetNew    = "new"    // not in known_hosts
)

// startFleet starts fleetSize hosts; kinds maps a host's index to what is
// wrong with it, the others are ok.
func startFleet(t *testing.T, f *fixture, kinds map[int]string) *fleet {
	t.Helper()
	fl := &fleet{want: map[string]client.Outcome{}}
	otherCA := testenv.NewKey(t, f.dir, "other-ca")
	var khLines []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	fl.targets = make([]client.Target, fleetSize)
	for i := range fleetSize {
		kind := kinds[i]
		name := fmt.Sprintf("web%02d", i)
		want := map[string]client.Outcome{"": client.OK, fleetDeny: client.AccessDenied, fleetClosed: client.Unreachable,
			fleetStall: client.TimedOut, fleetWrong: client.HostKeyMismatch, fleetRefuse: client.AuthRefused, fleetNew: client.HostKeyUnknown}[kind]
		fl.want[name] = want
		if kind == fleetClosed {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			ln.Close()
			fl.targets[i] = client.Target{Name: name, Addr: "127.0.0.1", Port: port, User: "logs"}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A pre-started worker each, so that a loaded machine's process
			// starts do not count against the run timeout.
			opts := testenv.HostOptions{CAPub: f.caPub, Policy: f.readPolicy, Audit: f.audit, WorkerPool: 1}
			switch kind {
			case fleetDeny:
				opts.Policy = f.denyPolicy
			case fleetRefuse:
				opts.CAPub = otherCA + ".pub"
			case fleetStall:
				opts.Worker = func() *exec.Cmd { return exec.Command("sleep", "60") }
				opts.WorkerPool = -1
				opts.Limits = sshserver.Limits{MaxWall: time.Minute}
			}
			h := testenv.StartHost(t, opts)
			line := h.KnownHostsLine()
			switch kind {
			case fleetWrong:
				other, _, err := keys.GenerateKey()
				if err != nil {
					t.Error(err)
					return
				}
				line = "[" + h.Host + "]:" + h.Port + " " + string(gossh.MarshalAuthorizedKey(other.PublicKey()))
			case fleetNew:
				line = ""
			}
			var port int
			fmt.Sscan(h.Port, &port)
			mu.Lock()
			defer mu.Unlock()
			if line != "" {
				khLines = append(khLines, line)
			}
			fl.targets[i] = client.Target{Name: name, Addr: h.Host, Port: port, User: "logs"}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	fl.knownHosts = f.knownHosts(t, "fleet_known_hosts", khLines...)
	return fl
}

func TestFanOut(t *testing.T) {
	f := newFixture(t)
	kinds := map[int]string{3: fleetDeny, 7: fleetDeny, 11: fleetDeny, 20: fleetClosed, 25: fleetStall,
		30: fleetWrong, 35: fleetRefuse, 40: fleetNew}
	fl := startFleet(t, f, kinds)
	d, err := client.NewDialer(client.Config{Identities: []string{f.userKey}, KnownHosts: []string{fl.knownHosts},
		NoAgent: true, ConnectTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var doneOrder []string
	start := time.Now()
	const runTimeout = 3 * time.Second
	results := d.FanOut(context.Background(), fl.targets, `print(fs.read(args["p"]).strip())`, client.FanOutOptions{
		Args:       map[string]any{"p": f.sandbox + "/pub/motd"},
		Parallel:   16,
		RunTimeout: runTimeout,
		Done:       func(r client.HostResult) { doneOrder = append(doneOrder, r.Target.Name) },
	})
	elapsed := time.Since(start)
	if len(results) != fleetSize || len(doneOrder) != fleetSize {
		t.Fatalf("%d results, %d done calls", len(results), len(doneOrder))
	}
	for i, r := range results {
		if r.Target.Name != fl.targets[i].Name {
			t.Fatalf("result %d is %s, want %s: results are in the targets' order", i, r.Target.Name, fl.targets[i].Name)
		}
		if want := fl.want[r.Target.Name]; r.Outcome != want {
			t.Errorf("%s: outcome %s, want %s (err %v)", r.Target.Name, r.Outcome, want, r.Err)
			continue
		}
		switch r.Outcome {
		case client.OK:
			if r.Result == nil || strings.Join(r.Result.Output, "\n") != "hello fleet" {
				t.Errorf("%s: result %+v", r.Target.Name, r.Result)
			}
		case client.AccessDenied:
			den := r.Result.Denied()
			if len(den) != 1 || den[0].Action != "read" || !slices.Equal(den[0].Policies, []string{"deny-all"}) ||
				r.Result.Error.Resource != f.sandbox+"/pub/motd" {
				t.Errorf("%s: denied %+v, error %+v", r.Target.Name, den, r.Result.Error)
			}
		case client.TimedOut:
			if r.Duration < runTimeout || r.Duration > runTimeout+3*time.Second {
				t.Errorf("%s: took %v with a run timeout of %v", r.Target.Name, r.Duration, runTimeout)
			}
		case client.HostKeyMismatch:
			if !strings.Contains(r.Err.Error(), "SHA256:") {
				t.Errorf("%s: mismatch without a fingerprint: %v", r.Target.Name, r.Err)
			}
		}
	}
	sum := client.Summarize(results)
	const wantSum = "50 hosts: 42 ok, 3 access denied, 1 unreachable, 1 authentication refused, 1 host key mismatch, 1 host key unknown, 1 timed out"
	if sum.String() != wantSum {
		t.Errorf("summary %q\nwant    %q", sum.String(), wantSum)
	}
	if sum.ExitStatus() != client.ExitSomeFailed || len(sum.Failed) != 8 {
		t.Errorf("exit %d, failed %v", sum.ExitStatus(), sum.Failed)
	}
	// The stalled host held one slot; everything else went on around it.
	if elapsed > runTimeout+8*time.Second {
		t.Errorf("fan-out took %v", elapsed)
	}
	t.Logf("fan-out of %d hosts: %v", fleetSize, elapsed)
}

// A host that accepts TCP and never speaks SSH ends at the connect
// timeout, as does a host behind a filtered port.
func TestFanOutConnectTimeout(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	kh := f.knownHosts(t, "kh", "[127.0.0.1]:1 "+string(gossh.MarshalAuthorizedKey(mustKey(t))))
	start := time.Now()
	results, err := client.FanOut(context.Background(), client.Config{Identities: []string{f.userKey}, KnownHosts: []string{kh},
		NoAgent: true, ConnectTimeout: 300 * time.Millisecond},
		[]client.Target{{Name: "mute", Addr: "127.0.0.1", Port: port, User: "logs"}}, `print(1)`, client.FanOutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Outcome != client.TimedOut || time.Since(start) > 5*time.Second {
		t.Errorf("outcome %s after %v: %v", results[0].Outcome, time.Since(start), results[0].Err)
	}
}

func mustKey(t *testing.T) gossh.PublicKey {
	t.Helper()
	s, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return s.PublicKey()
}

// A cancelled fan-out ends at once: every host Failed, none contacted.
func TestFanOutCancelled(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, f.readPolicy)
	kh := f.knownHosts(t, "kh", h.KnownHostsLine())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var port int
	fmt.Sscan(h.Port, &port)
	targets := []client.Target{{Name: "a", Addr: h.Host, Port: port, User: "logs"}, {Name: "b", Addr: h.Host, Port: port, User: "logs"}}
	results, err := client.FanOut(ctx, client.Config{Identities: []string{f.userKey}, KnownHosts: []string{kh}, NoAgent: true},
		targets, `print(1)`, client.FanOutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Outcome != client.Failed || !errors.Is(r.Err, context.Canceled) {
			t.Errorf("%s: %s %v", r.Target.Name, r.Outcome, r.Err)
		}
	}
}
