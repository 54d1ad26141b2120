package bench_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// sftpBenchEnv names the number of runs of each transfer TestSftpThroughput
// makes ("5"); unset, the test skips.
const sftpBenchEnv = "KEYHOLE_SFTP_BENCH"

// sftpBenchCipherEnv, when set, is the cipher both clients ask for (-c),
// instead of the one negotiated by default.
const sftpBenchCipherEnv = "KEYHOLE_SFTP_BENCH_CIPHER"

// sftpBenchSize is the size of the file moved.
const sftpBenchSize = 100 << 20

// transferSide is one server's way of doing one transfer with a stock
// client.
type transferSide struct {
	cmd   func(ctx context.Context) *exec.Cmd
	check func() error
}

// TestSftpThroughput moves a 100 MiB file through keyhole's sftp
// subsystem and OpenSSH's internal-sftp, side by side, with the stock
// clients: sftp get, sftp put, and scp download. It reports the median
// time and throughput of each, and the ratio of throughputs (keyhole /
// OpenSSH), with the cipher and key exchange both negotiated:
//
//	KEYHOLE_SFTP_BENCH=5 go test -run TestSftpThroughput -v ./bench/
func TestSftpThroughput(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv(sftpBenchEnv))
	if runs <= 0 {
		t.Skip(sftpBenchEnv + " not set")
	}
	for _, b := range []string{"ssh", "sftp", "scp", "ssh-keygen"} {
		testenv.NeedBinary(t, b)
	}
	if testenv.SSHDPath() == "" {
		t.Skip("sshd not installed")
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	kh := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"bench.cedar": `@id("sftp-start")
permit (principal in Keyhole::Role::"deploy", action == Keyhole::Action::"stat", resource == Keyhole::Dir::"/");
@id("bench-files")
permit (principal in Keyhole::Role::"deploy",
        action in [Keyhole::Action::"read", Keyhole::Action::"stat", Keyhole::Action::"list",
                   Keyhole::Action::"write", Keyhole::Action::"create"],
        resource in Keyhole::Dir::"{{SANDBOX}}");`},
		Limits: sshserver.Limits{MaxWall: 10 * time.Minute},
	})
	data := make([]byte, sftpBenchSize)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(kh.Sandbox, "big.bin")
	local := filepath.Join(kh.Dir, "local.bin")
	for _, p := range []string{src, local} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(kh.Dir, "sshd")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sshdKey := testenv.NewKey(t, dir, "user")
	sshdCrt := testenv.Cert(t, kh.CA, sshdKey+".pub", "agent-7", me.Username, "-V", "-5m:+1h")
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	sshd := testenv.StartSSHD(t, testenv.SSHDOptions{Dir: dir, TrustedUserCAKeys: kh.CA + ".pub", Home: home, Sftp: true})

	// The stock clients against each server, with the same options.
	opts := func(knownHosts, key, cert string) []string {
		o := []string{"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
			"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + knownHosts,
			"-o", "CertificateFile=" + cert, "-o", "LogLevel=ERROR"}
		if c := os.Getenv(sftpBenchCipherEnv); c != "" {
			o = append(o, "-c", c)
		}
		return o
	}
	type server struct {
		name, addr, login string
		opts              []string
	}
	servers := []server{
		{"keyhole", kh.Addr, "deploy", opts(kh.KnownHosts, kh.UserKey, kh.UserCert)},
		{"openssh", sshd.Addr, me.Username, opts(sshd.KnownHosts, sshdKey, sshdCrt)},
	}
	out := filepath.Join(kh.Dir, "out.bin")
	sameAs := func(p string) func() error {
		return func() error {
			got, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, data) {
				return fmt.Errorf("%s: %d bytes, not the file", p, len(got))
			}
			return os.Remove(p)
		}
	}
	sftpBatch := func(s server, batch string) func(ctx context.Context) *exec.Cmd {
		return func(ctx context.Context) *exec.Cmd {
			host, port, _ := strings.Cut(s.addr, ":")
			args := append(append([]string{}, s.opts...), "-P", port, "-b", "-", s.login+"@"+host)
			cmd := exec.CommandContext(ctx, "sftp", args...)
			cmd.Stdin = strings.NewReader(batch)
			return cmd
		}
	}
	scpDown := func(s server) func(ctx context.Context) *exec.Cmd {
		return func(ctx context.Context) *exec.Cmd {
			host, port, _ := strings.Cut(s.addr, ":")
			args := append(append([]string{}, s.opts...), "-P", port, s.login+"@"+host+":"+src, out)
			return exec.CommandContext(ctx, "scp", args...)
		}
	}
	tasks := []struct {
		name  string
		sides [2]transferSide
	}{
		{"sftp get", [2]transferSide{
			{sftpBatch(servers[0], "get "+src+" "+out+"\n"), sameAs(out)},
			{sftpBatch(servers[1], "get "+src+" "+out+"\n"), sameAs(out)},
		}},
		{"sftp put", [2]transferSide{
			{sftpBatch(servers[0], "put "+local+" "+kh.Sandbox+"/up.bin\n"), sameAs(kh.Sandbox + "/up.bin")},
			{sftpBatch(servers[1], "put "+local+" "+kh.Sandbox+"/up.bin\n"), sameAs(kh.Sandbox + "/up.bin")},
		}},
		{"scp download", [2]transferSide{
			{scpDown(servers[0]), sameAs(out)},
			{scpDown(servers[1]), sameAs(out)},
		}},
	}
	for _, s := range servers {
		t.Logf("%s negotiated: %s", s.name, negotiated(t, s.addr, s.login, s.opts))
	}
	for _, task := range tasks {
		var times [2][]time.Duration
		for i := 0; i < runs+1; i++ {
			order := []int{0, 1}
			if i%2 == 1 {
				order = []int{1, 0}
			}
			for _, k := range order {
				d := timeTransfer(t, servers[k].name+" "+task.name, task.sides[k])
				if i > 0 { // the first run of each warms the page cache
					times[k] = append(times[k], d)
				}
			}
		}
		k, o := median(times[0]), median(times[1])
		mib := float64(sftpBenchSize) / (1 << 20)
		t.Logf("%-12s keyhole %6.0f ms (%5.0f MiB/s, min %4.0f ms)  OpenSSH %6.0f ms (%5.0f MiB/s, min %4.0f ms)  throughput ratio %.2f×  (%d runs; load %s)",
			task.name, ms(k), mib/k.Seconds(), ms(slices.Min(times[0])), ms(o), mib/o.Seconds(), ms(slices.Min(times[1])),
			o.Seconds()/k.Seconds(), runs, loadAverage())
	}
}

// timeTransfer runs one transfer and returns the client's wall time.
func timeTransfer(t *testing.T, name string, s transferSide) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.cmd(ctx)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		t.Fatalf("%s: %v: %s", name, err, stderr.String())
	}
	if err := s.check(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

var kexLine = regexp.MustCompile(`debug1: kex: (algorithm: \S+|server->client cipher: \S+ MAC: \S+)`)

// negotiated is the key exchange and the cipher the stock client
// negotiates with the server at addr.
func negotiated(t *testing.T, addr, login string, opts []string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	// The first value of an option wins: LogLevel goes before opts'.
	args := append(append([]string{"-o", "LogLevel=DEBUG1"}, opts...), "-p", port, "-l", login, host, "exit")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run() // "exit" is no Starlark keyhole runs; the handshake is what is read
	var parts []string
	for _, m := range kexLine.FindAllStringSubmatch(stderr.String(), -1) {
		if !slices.Contains(parts, m[1]) {
			parts = append(parts, m[1])
		}
	}
	return strings.Join(parts, ", ")
}
