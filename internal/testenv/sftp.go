package testenv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// clientOptions are the options every stock client (ssh, sftp, scp)
// gets against the server at addr: the key and certificate given, no agent,
// no configuration file, only the host key in knownHosts accepted.
func clientOptions(knownHosts, key, cert string) []string {
	opts := []string{
		"-F", "/dev/null",
		"-i", key,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
	}
	if cert != "" {
		opts = append(opts, "-o", "CertificateFile="+cert)
	}
	return opts
}

// SFTPCommand returns the stock sftp client against the server as login
// with the default user key and certificate; args come after the options
// (for example "-b", batchFile), and the destination last.
func (e *Env) SFTPCommand(ctx context.Context, login string, args ...string) *exec.Cmd {
	host, port, _ := strings.Cut(e.Addr, ":")
	full := append(clientOptions(e.KnownHosts, e.UserKey, e.UserCert), "-P", port)
	full = append(full, args...)
	full = append(full, login+"@"+host)
	cmd := exec.CommandContext(ctx, "sftp", full...)
	cmd.Stdin = bytes.NewReader(nil)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	return cmd
}

// SCPCommand returns the stock scp client against the server as login;
// a remote operand is written "R:/path" and becomes login@host:/path.
func (e *Env) SCPCommand(ctx context.Context, login string, args ...string) *exec.Cmd {
	host, port, _ := strings.Cut(e.Addr, ":")
	full := append(clientOptions(e.KnownHosts, e.UserKey, e.UserCert), "-P", port)
	for _, a := range args {
		if rest, ok := strings.CutPrefix(a, "R:"); ok {
			a = login + "@" + host + ":" + rest
		}
		full = append(full, a)
	}
	cmd := exec.CommandContext(ctx, "scp", full...)
	cmd.Stdin = bytes.NewReader(nil)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	return cmd
}

// Run runs cmd, which must not have its output set, and returns what it
// gave; a command that cannot start fails the test.
func Run(t testing.TB, cmd *exec.Cmd) SSHResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	res := SSHResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	return res
}

// SFTPBatch runs the stock sftp client as login with the batch of
// commands given (one a line; a leading "-" lets a command fail without
// ending the batch), and returns what it gave.
func (e *Env) SFTPBatch(t testing.TB, login string, batch string) SSHResult {
	t.Helper()
	NeedBinary(t, "sftp")
	f, err := os.CreateTemp(e.Dir, "batch-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(batch); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return Run(t, e.SFTPCommand(ctx, login, "-b", f.Name()))
}
