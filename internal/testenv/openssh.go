package testenv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NeedBinary skips the test when an OpenSSH binary is not installed. CI
// installs them; a developer machine may not have them.
func NeedBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// Keygen runs the stock ssh-keygen with args and fails the test on error.
func Keygen(t testing.TB, args ...string) string {
	t.Helper()
	NeedBinary(t, "ssh-keygen")
	cmd := exec.Command("ssh-keygen", args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// NewKey makes an ed25519 key pair with ssh-keygen at dir/name and returns
// the private key's path.
func NewKey(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	Keygen(t, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p)
	return p
}

// Cert signs pub (a .pub path) with the CA private key at ca using
// ssh-keygen -s and returns the certificate's path. extra are further
// ssh-keygen flags, such as "-V", "-5m:+1h" or "-O", "source-address=…".
func Cert(t testing.TB, ca, pub, id, principals string, extra ...string) string {
	t.Helper()
	args := []string{"-q", "-s", ca, "-I", id}
	if principals != "" {
		args = append(args, "-n", principals)
	}
	args = append(args, extra...)
	args = append(args, pub)
	Keygen(t, args...)
	return strings.TrimSuffix(pub, ".pub") + "-cert.pub"
}

// SSHResult is what one run of the stock ssh client gave.
type SSHResult struct {
	Stdout, Stderr string
	Exit           int
}

// SSH runs the stock ssh client against addr as login, authenticating with
// the private key at key and the certificate at cert (if not empty). args
// are further options and the remote command.
func SSH(t testing.TB, knownHosts, addr, login, key, cert string, args ...string) SSHResult {
	t.Helper()
	NeedBinary(t, "ssh")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := SSHCommand(ctx, knownHosts, addr, login, key, cert, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	res := SSHResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	return res
}

// SSHCommand returns the command SSH runs, with empty stdin and no output
// set: the stock ssh client against addr as login, with the private key at
// key and the certificate at cert (if not empty), no agent, no
// configuration file, and only the host key in knownHosts accepted. args
// are further options and the remote command.
func SSHCommand(ctx context.Context, knownHosts, addr, login, key, cert string, args ...string) *exec.Cmd {
	host, port, _ := strings.Cut(addr, ":")
	base := []string{
		"-F", "/dev/null",
		"-p", port,
		"-i", key,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
		"-l", login,
	}
	if cert != "" {
		base = append(base, "-o", "CertificateFile="+cert)
	}
	base = append(base, args[:len(args)-1]...)
	base = append(base, host, args[len(args)-1])
	cmd := exec.CommandContext(ctx, "ssh", base...)
	cmd.Stdin = bytes.NewReader(nil)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	return cmd
}
