package testenv

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// SSHDPath returns the absolute path of OpenSSH's sshd, or "" when it is
// not installed (it often lives in /usr/sbin, outside a user's PATH).
func SSHDPath() string {
	bin, err := exec.LookPath("sshd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/sshd"); serr != nil {
			return ""
		}
		bin = "/usr/sbin/sshd"
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return ""
	}
	return abs
}

// SSHDOptions says how StartSSHD configures sshd.
type SSHDOptions struct {
	// Dir holds the host key, configuration and known_hosts file.
	Dir string
	// TrustedUserCAKeys and RevokedKeys are sshd's options of those names;
	// empty leaves them out.
	TrustedUserCAKeys, RevokedKeys string
	// NoReexec runs sshd with -r: no re-exec for each connection, one
	// process start less per connection. A deployed sshd re-executes.
	NoReexec bool
	// Home, when set, is the HOME of the commands sshd runs (SetEnv), so
	// the login user's shell start-up files (~/.bashrc) are not read:
	// what they cost is the machine's, not OpenSSH's.
	Home string
	// Sftp serves subsystem sftp with sshd's in-process internal-sftp.
	Sftp bool
}

// SSHD is a running OpenSSH sshd.
type SSHD struct {
	Addr       string // 127.0.0.1:port
	KnownHosts string // a known_hosts file naming its host key
	Pid        int    // the listening sshd's process id
	log        *lockedBuffer
}

// Log returns the end of sshd's log, for failure messages.
func (s *SSHD) Log() string { return s.log.tail(4000) }

// StartSSHD starts OpenSSH's sshd on a free port of 127.0.0.1, accepting
// only public keys (no authorized keys file: certificates of the trusted
// CAs), and stops it when the test ends. The caller checks SSHDPath first
// and skips when it is empty; sshd also needs its privilege separation
// directory /run/sshd, which is created when it may be.
func StartSSHD(t testing.TB, opts SSHDOptions) *SSHD {
	t.Helper()
	bin := SSHDPath()
	if bin == "" {
		t.Fatal("testenv: sshd not installed")
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("testenv: sshd needs /run/sshd: %v", err)
	}
	hostKey := NewKey(t, opts.Dir, "sshd_host_key")
	must(t, os.Chmod(hostKey, 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := []string{
		"ListenAddress " + addr,
		"HostKey " + hostKey,
		"PidFile none",
		"UsePAM no",
		"StrictModes no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AuthorizedKeysFile none",
		"PermitRootLogin prohibit-password",
		"MaxStartups 100",
		"LogLevel VERBOSE",
	}
	if opts.TrustedUserCAKeys != "" {
		conf = append(conf, "TrustedUserCAKeys "+opts.TrustedUserCAKeys)
	}
	if opts.RevokedKeys != "" {
		conf = append(conf, "RevokedKeys "+opts.RevokedKeys)
	}
	if opts.Home != "" {
		conf = append(conf, "SetEnv HOME="+opts.Home)
	}
	if opts.Sftp {
		conf = append(conf, "Subsystem sftp internal-sftp")
	}
	confPath := filepath.Join(opts.Dir, "sshd_config")
	must(t, os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600))
	args := []string{"-D", "-e", "-f", confPath}
	if opts.NoReexec {
		args = append(args, "-r")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("testenv: start sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cancel(); <-exited })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("testenv: sshd exited:\n%s", log.tail(4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: sshd did not listen on %s:\n%s", addr, log.tail(4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	hk, _, _, _, err := gossh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	kh := filepath.Join(opts.Dir, "sshd_known_hosts")
	must(t, os.WriteFile(kh, []byte("["+host+"]:"+port+" "+string(gossh.MarshalAuthorizedKey(hk))), 0o644))
	return &SSHD{Addr: addr, KnownHosts: kh, Pid: cmd.Process.Pid, log: log}
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}
