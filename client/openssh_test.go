package client_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// startAgent starts a real ssh-agent on a socket in dir and returns the
// socket's path; the agent is killed when the test ends.
func startAgent(t *testing.T, dir string) string {
	t.Helper()
	bin := testenv.NeedBinary(t, "ssh-agent")
	testenv.NeedBinary(t, "ssh-add")
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command(bin, "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not make its socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sshAdd(t *testing.T, sock string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ssh-add", args...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-add %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// A key and its certificate added to a real ssh-agent with ssh-add log in
// with no key file named and none in ~/.ssh; the agent with only the
// plain key is refused by a server that takes certificates only.
func TestAgentCertificate(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, f.readPolicy)
	kh := f.knownHosts(t, "known_hosts", h.KnownHostsLine())
	t.Setenv("HOME", t.TempDir()) // no default identities
	t.Run("key-and-certificate", func(t *testing.T) {
		sock := startAgent(t, t.TempDir())
		out := sshAdd(t, sock, f.userKey)
		if !strings.Contains(out, "Certificate added") {
			t.Fatalf("ssh-add did not add the certificate: %s", out)
		}
		t.Setenv("SSH_AUTH_SOCK", sock)
		c, err := client.Dial(context.Background(), "logs@"+h.Addr, client.Config{KnownHosts: []string{kh}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		res, err := c.Run(context.Background(), `print("via agent")`, nil)
		if err != nil || res.Exit != 0 {
			t.Fatalf("run: %v %+v", err, res)
		}
		found := false
		for _, ev := range testenv.ReadAudit(t, f.auditPath) {
			if ev["event"] == "session.start" && ev["user"] == "agent-7" {
				found = true
			}
		}
		if !found {
			t.Error("no session of the certificate's key id agent-7 in the audit log")
		}
	})
	t.Run("plain-key-only", func(t *testing.T) {
		dir := t.TempDir()
		sock := startAgent(t, dir)
		plain := testenv.NewKey(t, dir, "plain")
		sshAdd(t, sock, plain)
		_, err := client.Dial(context.Background(), "logs@"+h.Addr, client.Config{KnownHosts: []string{kh}, AgentSocket: sock})
		if client.Classify(nil, err) != client.AuthRefused {
			t.Errorf("plain key from the agent: %v", err)
		}
	})
	t.Run("no-agent-no-key", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", "")
		_, err := client.Dial(context.Background(), "logs@"+h.Addr, client.Config{KnownHosts: []string{kh}})
		if err == nil || !strings.Contains(err.Error(), "no identity") {
			t.Errorf("err = %v", err)
		}
	})
}

// ProxyJump through a real OpenSSH sshd on 127.0.0.1 to a keyhole host:
// the bastion's host key is checked like any other, and a bastion that
// presents another key stops the connection there.
func TestProxyJump(t *testing.T) {
	if testenv.SSHDPath() == "" {
		t.Skip("sshd not installed: the ProxyJump test needs OpenSSH's sshd as the bastion")
	}
	f := newFixture(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	key := testenv.NewKey(t, f.dir, "jumper")
	testenv.Cert(t, f.caKey, key+".pub", "jumper", "logs,"+me.Username, "-V", "-5m:+1h")
	sshd := testenv.StartSSHD(t, testenv.SSHDOptions{Dir: t.TempDir(), TrustedUserCAKeys: f.caPub})
	h := f.host(t, f.readPolicy)
	bastionLine, err := os.ReadFile(sshd.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	kh := f.knownHosts(t, "known_hosts", string(bastionLine), h.KnownHostsLine())
	jump := me.Username + "@" + sshd.Addr
	cfg := client.Config{Identities: []string{key}, KnownHosts: []string{kh}, NoAgent: true, Jump: jump}
	c, err := client.Dial(context.Background(), "logs@"+h.Addr, cfg)
	if err != nil {
		t.Fatalf("%v\nsshd log:\n%s", err, sshd.Log())
	}
	res, err := c.Run(context.Background(), `print("through the bastion")`, nil)
	c.Close()
	if err != nil || res.Exit != 0 || strings.Join(res.Output, "") != "through the bastion" {
		t.Fatalf("run: %v %+v", err, res)
	}
	if !strings.Contains(sshd.Log(), "Accepted publickey for "+me.Username) {
		t.Errorf("sshd did not log the jump login:\n%s", sshd.Log())
	}
	// A chain of two hops through the same bastion works too.
	cfg.Jump = jump + "," + jump
	if c, err = client.Dial(context.Background(), "logs@"+h.Addr, cfg); err != nil {
		t.Fatalf("two hops: %v", err)
	}
	c.Close()
	// The bastion's key is checked: with only the keyhole host known, the
	// bastion is an unknown host and nothing goes through it.
	cfg.Jump = jump
	cfg.KnownHosts = []string{f.knownHosts(t, "kh-no-bastion", h.KnownHostsLine(),
		"["+strings.Replace(sshd.Addr, ":", "]:", 1)+" "+string(gossh.MarshalAuthorizedKey(mustKey(t))))}
	_, err = client.Dial(context.Background(), "logs@"+h.Addr, cfg)
	var je *client.JumpError
	if !errors.As(err, &je) || client.Classify(nil, err) != client.HostKeyMismatch || !strings.Contains(err.Error(), "jump host") {
		t.Errorf("bastion with another key: %v", err)
	}
}

// An encrypted key: named with -i, the agent holding it signs for it;
// named and not in the agent, it is an error (keyhole never asks for a
// passphrase); as a default identity, it is skipped.
func TestEncryptedKey(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, f.readPolicy)
	kh := f.knownHosts(t, "known_hosts", h.KnownHostsLine())
	home := t.TempDir()
	t.Setenv("HOME", home)
	mustWrite(t, filepath.Join(home, ".ssh", "known_hosts"), "")
	key := testenv.NewKey(t, filepath.Join(home, ".ssh"), "id_ed25519")
	testenv.Cert(t, f.caKey, key+".pub", "agent-9", "logs", "-V", "-5m:+1h")
	sock := startAgent(t, t.TempDir())
	sshAdd(t, sock, key) // the key and its certificate, before the file is encrypted
	testenv.Keygen(t, "-q", "-p", "-P", "", "-N", "a passphrase", "-f", key)

	c, err := client.Dial(context.Background(), "logs@"+h.Addr, client.Config{Identities: []string{key}, KnownHosts: []string{kh}, AgentSocket: sock})
	if err != nil {
		t.Fatalf("encrypted key held by the agent: %v", err)
	}
	c.Close()
	_, err = client.NewDialer(client.Config{Identities: []string{key}, KnownHosts: []string{kh}, NoAgent: true})
	if err == nil || !strings.Contains(err.Error(), "is encrypted: add it to ssh-agent") {
		t.Errorf("encrypted key, no agent: %v", err)
	}
	// As the default identity, with no agent: skipped, so no identity.
	_, err = client.NewDialer(client.Config{KnownHosts: []string{kh}, NoAgent: true})
	if err == nil || !strings.Contains(err.Error(), "no identity") {
		t.Errorf("encrypted default identity: %v", err)
	}
}
