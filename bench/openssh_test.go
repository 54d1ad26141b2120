package bench_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// bigSize is the size of the larger file read: well under keyhole's
// default caps (fs.read 64 MiB, print output 16 MiB).
const bigSize = 8 << 20

// pair is keyhole and OpenSSH's sshd serving the same sandbox on loopback.
type pair struct {
	kh *testenv.Env
	// sshd, and the key and certificate (signed by the same CA as
	// keyhole's user, for the local user sshd logs in) it accepts.
	sshd             *testenv.SSHD
	login            string
	sshdKey, sshdCrt string
}

// startPair starts both servers, or skips when an OpenSSH binary is not
// installed. keyhole is the in-process server with a real worker process
// per script and its default pool, under limits (the defaults if none
// are given); sshd runs as deployed (re-executing itself for each
// connection) and allows only certificates of the CA. Its commands get an
// empty HOME, so the login user's ~/.bashrc, which on a developer machine
// can cost more than all of OpenSSH, is not measured.
func startPair(b *testing.B, limits ...sshserver.Limits) *pair {
	b.Helper()
	testenv.NeedBinary(b, "ssh")
	testenv.NeedBinary(b, "ssh-keygen")
	if testenv.SSHDPath() == "" {
		b.Skip("sshd not installed")
	}
	me, err := user.Current()
	if err != nil {
		b.Fatal(err)
	}
	big := make([]byte, bigSize)
	for i := range big {
		big[i] = 'a' + byte(i%26)
		if i%64 == 63 {
			big[i] = '\n'
		}
	}
	kh := testenv.Start(b, testenv.Options{
		Policies: map[string]string{"bench.cedar": `@id("bench-read")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::"{{SANDBOX}}");`},
		Files: map[string]string{
			"small.txt": "one small line of a log file\n",
			"big.txt":   string(big),
		},
		Limits: append(limits, sshserver.Limits{})[0],
	})
	p := &pair{kh: kh, login: me.Username}
	dir := filepath.Join(kh.Dir, "sshd")
	if err := os.Mkdir(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	p.sshdKey = testenv.NewKey(b, dir, "user")
	p.sshdCrt = testenv.Cert(b, kh.CA, p.sshdKey+".pub", "agent-7", me.Username, "-V", "-5m:+1h")
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		b.Fatal(err)
	}
	p.sshd = testenv.StartSSHD(b, testenv.SSHDOptions{Dir: dir, TrustedUserCAKeys: kh.CA + ".pub", Home: home})
	return p
}

// side is one server's way of doing the task of a case: the stock ssh
// client's command, and a check of what it printed.
type side struct {
	cmd   func(ctx context.Context) *exec.Cmd
	check func(out string) error
}

func (p *pair) keyhole(script string, check func(string) error) side {
	return side{cmd: func(ctx context.Context) *exec.Cmd {
		return testenv.SSHCommand(ctx, p.kh.KnownHosts, p.kh.Addr, "logs", p.kh.UserKey, p.kh.UserCert, script)
	}, check: check}
}

func (p *pair) openssh(command string, check func(string) error) side {
	return side{cmd: func(ctx context.Context) *exec.Cmd {
		return testenv.SSHCommand(ctx, p.sshd.KnownHosts, p.sshd.Addr, p.login, p.sshdKey, p.sshdCrt, command)
	}, check: check}
}

// time runs s once and returns how long the stock ssh client took, from
// its start to its exit. Its output goes to a file, as with
// "ssh host cmd > file": through a pipe, the client itself slows a large
// transfer down several times on this kind of machine, whichever server
// it talks to.
func (s side) time(b *testing.B, name string) time.Duration {
	out, err := os.CreateTemp(b.TempDir(), "out")
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := s.cmd(ctx)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = out, &stderr
	t0 := time.Now()
	err = cmd.Run()
	d := time.Since(t0)
	if err != nil {
		b.Fatalf("%s: %v, stderr %q", name, err, stderr.String())
	}
	got, err := os.ReadFile(out.Name())
	if err != nil {
		b.Fatal(err)
	}
	if err := s.check(string(got)); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return d
}

// compare runs both sides once per iteration, alternating which goes
// first, and reports the median of each, in milliseconds, and the ratio
// of the medians (keyhole / OpenSSH). ns/op is the time of both.
func compare(b *testing.B, kh, ossh side) {
	// One untimed run each: keyhole's first session fills its worker pool.
	kh.time(b, "keyhole")
	ossh.time(b, "openssh")
	var khT, osT []time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			khT = append(khT, kh.time(b, "keyhole"))
			osT = append(osT, ossh.time(b, "openssh"))
		} else {
			osT = append(osT, ossh.time(b, "openssh"))
			khT = append(khT, kh.time(b, "keyhole"))
		}
		i++
	}
	k, o := median(khT), median(osT)
	b.ReportMetric(ms(k), "keyhole-ms/op")
	b.ReportMetric(ms(o), "openssh-ms/op")
	b.ReportMetric(float64(k)/float64(o), "ratio")
	b.Logf("medians of %d runs each: keyhole %.1f ms (min %.1f), OpenSSH %.1f ms (min %.1f); load average %s",
		len(khT), ms(k), ms(slices.Min(khT)), ms(o), ms(slices.Min(osT)), loadAverage())
}

// BenchmarkVsOpenSSH compares keyhole with OpenSSH's sshd, task by task,
// each a whole run of the stock ssh client (connect, key exchange,
// certificate authentication, one command, exit). The cases: setup, a
// session that does nothing (keyhole print(1), sshd true); read-small, one
// small file (print(fs.read(p)), cat p); read-8MiB, an 8 MiB file; stat, a
// file's size (fs.stat(p).size, stat -c %s p). The command:
//
//	go test -run '^$' -bench VsOpenSSH -benchtime 40x ./bench/
func BenchmarkVsOpenSSH(b *testing.B) {
	p := startPair(b)
	small := filepath.Join(p.kh.Sandbox, "small.txt")
	big := filepath.Join(p.kh.Sandbox, "big.txt")
	equal := func(want string) func(string) error {
		return func(out string) error {
			if out != want {
				return fmt.Errorf("output %q, want %q", trim(out), trim(want))
			}
			return nil
		}
	}
	size := func(n int) func(string) error {
		return func(out string) error {
			if len(out) != n {
				return fmt.Errorf("output of %d bytes, want %d", len(out), n)
			}
			return nil
		}
	}
	line := "one small line of a log file\n"
	b.Run("setup", func(b *testing.B) {
		compare(b, p.keyhole(`print(1)`, equal("1\n")), p.openssh("true", equal("")))
	})
	b.Run("read-small", func(b *testing.B) {
		compare(b, p.keyhole(`print(fs.read("`+small+`"))`, equal(line+"\n")), p.openssh("cat "+small, equal(line)))
	})
	b.Run("read-8MiB", func(b *testing.B) {
		compare(b, p.keyhole(`print(fs.read("`+big+`"))`, size(bigSize+1)), p.openssh("cat "+big, size(bigSize)))
	})
	b.Run("stat", func(b *testing.B) {
		want := strconv.Itoa(len(line)) + "\n"
		compare(b, p.keyhole(`print(fs.stat("`+small+`").size)`, equal(want)), p.openssh("stat -c %s "+small, equal(want)))
	})
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func trim(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// loadAverage is the first three fields of /proc/loadavg, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
