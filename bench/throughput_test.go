package bench_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// throughputEnv names the number of sessions TestThroughput runs against
// each server ("2000"); unset, the test skips, so it is not part of the
// default run. throughputOnlyEnv, when set to "keyhole", "bare" or
// "openssh", runs that server alone (for a CPU profile of one side).
const (
	throughputEnv     = "KEYHOLE_THROUGHPUT"
	throughputOnlyEnv = "KEYHOLE_THROUGHPUT_ONLY"
)

// Bounds of TestThroughput: clients at once, the longest one session may
// take, and the longest one server's run may take.
const (
	throughputClients    = 200
	throughputSessionMax = 60 * time.Second
	throughputRunMax     = 5 * time.Minute
)

// loadResult is what one server's run measured.
type loadResult struct {
	name      string
	sessions  int // sessions that ran and printed what they should
	errors    int
	firstErr  error
	elapsed   time.Duration
	latencies []time.Duration // of the sessions that succeeded
	cpuSelf   time.Duration   // user+system CPU of this process during the run
	cpuChild  time.Duration   // of child processes reaped during the run
	loadStart string          // load average at the start of the run
	loadEnd   string          // and at its end
}

func (r loadResult) rate() float64 { return float64(r.sessions) / r.elapsed.Seconds() }

func (r loadResult) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// target is one server to load: its address, the client configuration
// that logs in to it, the command each session runs and the output it
// must print.
type target struct {
	key     string // "keyhole", "bare" or "openssh", for throughputOnlyEnv
	name    string
	addr    string
	config  *gossh.ClientConfig
	command string
	want    string
}

// session dials a new connection, runs the command in one session, checks
// its output and exit status, and closes the connection.
func (tg target) session(ctx context.Context) error {
	d := net.Dialer{Timeout: throughputSessionMax}
	c, err := d.DialContext(ctx, "tcp", tg.addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(throughputSessionMax)); err != nil {
		return err
	}
	conn, chans, reqs, err := gossh.NewClientConn(c, tg.addr, tg.config)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	client := gossh.NewClient(conn, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer s.Close()
	out, err := s.Output(tg.command)
	if err != nil {
		return fmt.Errorf("run: %w (output %q)", err, trim(string(out)))
	}
	if string(out) != tg.want {
		return fmt.Errorf("output %q, want %q", trim(string(out)), trim(tg.want))
	}
	return nil
}

// run runs n sessions against tg from clients goroutines, each session on
// a new connection, and stops early when ctx ends.
func (tg target) run(ctx context.Context, n, clients int) loadResult {
	res := loadResult{name: tg.name}
	var mu sync.Mutex
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	res.loadStart = loadAverage()
	self0, child0 := cpuTimes()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := tg.session(ctx)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.errors++
					if res.firstErr == nil {
						res.firstErr = err
					}
				} else {
					res.sessions++
					res.latencies = append(res.latencies, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	self1, child1 := cpuTimes()
	res.cpuSelf, res.cpuChild = self1-self0, child1-child0
	res.loadEnd = loadAverage()
	return res
}

// cpuTimes returns the user+system CPU time of this process and of its
// reaped children (keyhole's workers, sshd) so far.
func cpuTimes() (self, children time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) == nil {
		children = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return self, children
}

// startBare starts a gliderlabs/ssh server on 127.0.0.1:0 that accepts
// certificates of the CA at caPub whose principals include the login, as
// keyhole's certificate rules do, and answers every exec request with
// content and exit status 0: the least an SSH server in Go can do for a
// session, the floor under keyhole's rate. It is stopped when t ends.
func startBare(t testing.TB, caPub string, content []byte) (addr string, hostKey gossh.PublicKey) {
	t.Helper()
	b, err := os.ReadFile(caPub)
	if err != nil {
		t.Fatal(err)
	}
	ca, _, _, _, err := gossh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	checker := &gossh.CertChecker{
		IsUserAuthority: func(auth gossh.PublicKey) bool {
			return string(auth.Marshal()) == string(ca.Marshal())
		},
	}
	host, _, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	srv := &gliderssh.Server{
		Handler: func(s gliderssh.Session) {
			if s.RawCommand() == "" {
				_ = s.Exit(1)
				return
			}
			if _, err := s.Write(content); err != nil {
				return
			}
			_ = s.Exit(0)
		},
		PublicKeyHandler: func(ctx gliderssh.Context, key gliderssh.PublicKey) bool {
			cert, ok := key.(*gossh.Certificate)
			if !ok {
				return false
			}
			return checker.CheckCert(ctx.User(), cert) == nil && checker.IsUserAuthority(cert.SignatureKey)
		},
	}
	srv.AddHostKey(host)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil && !errors.Is(err, gliderssh.ErrServerClosed) {
			t.Errorf("bare server: %v", err)
		}
	})
	return ln.Addr().String(), host.PublicKey()
}

// TestThroughput measures how many sessions per second keyhole serves
// when $KEYHOLE_THROUGHPUT sessions come from 200 concurrent x/crypto/ssh
// clients, each session on a new connection with certificate
// authentication, running print(fs.read(p)) of a small file; and, in the
// same run, the same load against a bare gliderlabs/ssh server that
// checks the certificate the same way and writes the file's contents (the
// floor), and against OpenSSH's sshd running cat p when it is installed.
// It reports sessions/s, p50/p99 latency, errors and CPU per session for
// each, and keyhole's rate as a share of the bare server's. It fails when
// a server fails a session.
//
//	KEYHOLE_THROUGHPUT=2000 go test -run TestThroughput -v -timeout 20m ./bench/
func TestThroughput(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv(throughputEnv))
	if err != nil || n <= 0 {
		t.Skipf("set %s to a number of sessions (e.g. 2000) to measure throughput", throughputEnv)
	}
	only := os.Getenv(throughputOnlyEnv)
	testenv.NeedBinary(t, "ssh-keygen")
	line := "one small line of a log file\n"
	clients := min(throughputClients, n)
	// The caps on connections are raised to the load: at their defaults
	// (10 unauthenticated connections per source, 32 per user) they would
	// refuse most of 200 clients that share one address and one identity,
	// and this measures serving, not refusing.
	e := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"bench.cedar": `@id("bench-read")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::"{{SANDBOX}}");`},
		Files: map[string]string{"small.txt": line},
		Limits: sshserver.Limits{
			MaxStartups:           2 * clients,
			MaxStartupsPerSource:  2 * clients,
			MaxConnections:        2 * clients,
			MaxConnectionsPerUser: 2 * clients,
		},
	})
	small := filepath.Join(e.Sandbox, "small.txt")
	signer := e.UserSigner(t)
	bareAddr, bareHost := startBare(t, e.CA+".pub", []byte(line))

	targets := []target{
		{key: "bare", name: "bare gliderlabs/ssh", addr: bareAddr, command: "cat " + small, want: line,
			config: &gossh.ClientConfig{User: "logs", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
				HostKeyCallback: gossh.FixedHostKey(bareHost), Timeout: throughputSessionMax}},
		{key: "keyhole", name: "keyhole", addr: e.Addr, command: `print(fs.read("` + small + `"))`, want: line + "\n",
			config: e.ClientConfig("logs", signer)},
	}
	targets[1].config.Timeout = throughputSessionMax
	if testenv.SSHDPath() != "" {
		login, sshdSigner, sshd := startThroughputSSHD(t, e)
		targets = append(targets, target{key: "openssh", name: "OpenSSH sshd", addr: sshd.Addr, command: "cat " + small, want: line,
			config: &gossh.ClientConfig{User: login, Auth: []gossh.AuthMethod{gossh.PublicKeys(sshdSigner)},
				HostKeyCallback: sshdHostKey(t, sshd), Timeout: throughputSessionMax}})
	} else {
		t.Log("sshd not installed: OpenSSH left out")
	}

	var results []loadResult
	for _, tg := range targets {
		if only != "" && only != tg.key {
			continue
		}
		// A few sessions first, not counted: keyhole's worker pool fills
		// and the client's code paths are warm, for every server alike.
		for range 3 {
			if err := tg.session(context.Background()); err != nil {
				t.Fatalf("%s: warm-up session: %v", tg.name, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), throughputRunMax)
		r := tg.run(ctx, n, clients)
		cancel()
		results = append(results, r)
		if r.errors > 0 {
			t.Errorf("%s: %d of %d sessions failed, the first: %v", r.name, r.errors, n, r.firstErr)
		}
		if r.sessions+r.errors < n {
			t.Errorf("%s: run stopped after %s with %d of %d sessions done", r.name, throughputRunMax, r.sessions+r.errors, n)
		}
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "%d sessions, %d clients, each session a new connection\n", n, clients)
	fmt.Fprintf(&sb, "| server | sessions/s | p50 ms | p99 ms | errors | CPU ms/session (this process + children) | load average before; after |\n|---|---|---|---|---|---|---|\n")
	var bare, kh float64
	for _, r := range results {
		perSession := func(d time.Duration) float64 { return ms(d) / float64(max(r.sessions+r.errors, 1)) }
		fmt.Fprintf(&sb, "| %s | %.0f | %.0f | %.0f | %d | %.2f + %.2f | %s; %s |\n",
			r.name, r.rate(), ms(r.pct(0.50)), ms(r.pct(0.99)), r.errors, perSession(r.cpuSelf), perSession(r.cpuChild), r.loadStart, r.loadEnd)
		switch r.name {
		case "keyhole":
			kh = r.rate()
		case "bare gliderlabs/ssh":
			bare = r.rate()
		}
	}
	if bare > 0 && kh > 0 {
		fmt.Fprintf(&sb, "keyhole / bare: %.2f\n", kh/bare)
	}
	t.Log("\n" + sb.String())
}

// startThroughputSSHD starts sshd trusting keyhole's CA for the local
// user, with a key and certificate for that user, as startPair does.
func startThroughputSSHD(t *testing.T, e *testenv.Env) (string, gossh.Signer, *testenv.SSHD) {
	t.Helper()
	login := os.Getenv("USER")
	if login == "" {
		t.Skip("USER not set: cannot log in to sshd")
	}
	dir := filepath.Join(e.Dir, "sshd")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	key := testenv.NewKey(t, dir, "user")
	crt := testenv.Cert(t, e.CA, key+".pub", "agent-7", login, "-V", "-5m:+1h")
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	sshd := testenv.StartSSHD(t, testenv.SSHDOptions{Dir: dir, TrustedUserCAKeys: e.CA + ".pub", Home: home})
	return login, testenv.CertSigner(t, key, crt), sshd
}

// sshdHostKey accepts the host key named in sshd's known_hosts file.
func sshdHostKey(t *testing.T, s *testenv.SSHD) gossh.HostKeyCallback {
	t.Helper()
	b, err := os.ReadFile(s.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	_, _, key, _, _, err := gossh.ParseKnownHosts(b)
	if err != nil {
		t.Fatal(err)
	}
	return gossh.FixedHostKey(key)
}
