package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

// devPolicy is the example policy of "keyhole dev"; %[1]s is the sandbox.
const devPolicy = `// The example policy of "keyhole dev".
// Role "dev" may read, list and stat everything under logs/.
@id("dev-logs-read")
permit (
  principal in Keyhole::Role::"dev",
  action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat"],
  resource in Keyhole::Dir::"%[1]s/logs"
);

// sftp and scp start by asking where they are: a stat of "/" itself
// (==, not in: nothing under it).
@id("dev-sftp-start")
permit (
  principal in Keyhole::Role::"dev",
  action == Keyhole::Action::"stat",
  resource == Keyhole::Dir::"/"
);

// Nobody may touch secrets/, whatever else permits it.
@id("no-secrets")
forbid (
  principal,
  action,
  resource in Keyhole::Dir::"%[1]s/secrets"
);
`

func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "dev [--listen ADDR] [--keep]", stdout)
	listen := fs.String("listen", "127.0.0.1:0", "loopback `address` to listen on")
	keep := fs.Bool("keep", false, "keep the throwaway directory when stopping")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkLoopback(*listen); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "keyhole-dev-")
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	// Policies name canonical paths: resolve a symlinked temp dir.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	cleanup := func() {
		if !*keep {
			os.RemoveAll(dir)
		}
	}
	env, err := makeDevEnv(dir)
	if err != nil {
		cleanup()
		return err
	}
	srv, err := startServer(&config{
		Listen:            *listen,
		HostKey:           filepath.Join(dir, "host_key"),
		TrustedUserCAKeys: filepath.Join(dir, "ca.pub"),
		PolicyDir:         filepath.Join(dir, "policies"),
		AuditLog:          filepath.Join(dir, "audit.log"),
		Limits:            limitsConfig{MaxWall: duration{10 * time.Second}},
	}, stderr)
	if err != nil {
		cleanup()
		return err
	}
	if err := env.writeSSHConfig(srv.addr()); err != nil {
		srv.close()
		cleanup()
		return err
	}
	fmt.Fprint(stdout, env.instructions(srv.addr()))
	err = srv.wait(ctx, func() { fmt.Fprintln(stderr, "keyhole: stopping") })
	srv.close()
	cleanup()
	if *keep {
		fmt.Fprintf(stderr, "keyhole: kept %s\n", dir)
	}
	return err
}

// checkLoopback refuses a dev listen address that is not a loopback
// address: dev's throwaway CA key sits in a temporary directory, and its
// example policy is for trying keyhole, not for a network.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return &usageError{fmt.Sprintf("dev: --listen %q is not a host:port address", addr)}
	}
	if ip, err := netip.ParseAddr(host); (err == nil && ip.IsLoopback()) || host == "localhost" {
		return nil
	}
	return &hinted{&usageError{fmt.Sprintf("dev: --listen %q is not a loopback address", addr)},
		"dev listens on loopback only (127.0.0.1:PORT or [::1]:PORT); use \"keyhole serve\" to serve a network"}
}

// devEnv is the throwaway world of "keyhole dev".
type devEnv struct {
	dir, sandbox string
}

// makeDevEnv creates the CA, host key, client key and certificate, sandbox
// files and policy under dir.
func makeDevEnv(dir string) (*devEnv, error) {
	e := &devEnv{dir: dir, sandbox: filepath.Join(dir, "sandbox")}
	caSigner, caKey, err := keys.GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := keys.WriteKeyPair(filepath.Join(dir, "ca"), caKey, "keyhole dev CA"); err != nil {
		return nil, err
	}
	if _, err := keys.LoadOrCreateHostKey(filepath.Join(dir, "host_key")); err != nil {
		return nil, err
	}
	_, userKey, err := keys.GenerateKey()
	if err != nil {
		return nil, err
	}
	idPath := filepath.Join(dir, "id_ed25519")
	if err := keys.WriteKeyPair(idPath, userKey, "dev-user"); err != nil {
		return nil, err
	}
	userPub, err := gossh.NewPublicKey(userKey.Public())
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	cert, err := keys.SignUserCert(caSigner, keys.CertRequest{
		Key: userPub, KeyID: "dev-user", Principals: []string{"dev"}, Serial: 1, Validity: 24 * time.Hour,
	})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(idPath+"-cert.pub", gossh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	files := map[string]string{
		"logs/app.log":         "2026-01-01T00:00:00Z service started\n2026-01-01T00:00:05Z ready\n",
		"logs/archive/old.log": "an older log\n",
		"secrets/token":        "not for scripts\n",
		"config/app.conf":      "port = 8080\n",
	}
	for name, content := range files {
		p := filepath.Join(e.sandbox, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
	}
	// A symlink inside the readable directory that points at a secret:
	// policy is checked on the real target, so reading it is denied.
	if err := os.Symlink(filepath.Join(e.sandbox, "secrets/token"), filepath.Join(e.sandbox, "logs/token-link")); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	pdir := filepath.Join(dir, "policies")
	if err := os.Mkdir(pdir, 0o755); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "dev.cedar"), []byte(fmt.Sprintf(devPolicy, e.sandbox)), 0o644); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	return e, nil
}

// writeSSHConfig writes an ssh_config and known_hosts for the stock client.
func (e *devEnv) writeSSHConfig(addr string) error {
	host, port, _ := strings.Cut(addr, ":")
	hostKey, err := os.ReadFile(filepath.Join(e.dir, "host_key.pub"))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	fields := strings.Fields(string(hostKey))
	kh := fmt.Sprintf("[%s]:%s %s %s\n", host, port, fields[0], fields[1])
	if err := os.WriteFile(filepath.Join(e.dir, "known_hosts"), []byte(kh), 0o644); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	cfg := fmt.Sprintf(`Host keyhole-dev
  HostName %s
  Port %s
  User dev
  IdentityFile %s
  CertificateFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  BatchMode yes
`, host, port, filepath.Join(e.dir, "id_ed25519"), filepath.Join(e.dir, "id_ed25519-cert.pub"), filepath.Join(e.dir, "known_hosts"))
	if err := os.WriteFile(filepath.Join(e.dir, "ssh_config"), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	return nil
}

func (e *devEnv) instructions(addr string) string {
	ssh := "ssh -F " + filepath.Join(e.dir, "ssh_config") + " keyhole-dev"
	scp := "scp -F " + filepath.Join(e.dir, "ssh_config") + " keyhole-dev:"
	return fmt.Sprintf(`keyhole dev is listening on %[1]s (stop it with Ctrl-C; everything below is removed then)

policy:    %[2]s/policies/dev.cedar
sandbox:   %[3]s
audit log: %[2]s/audit.log

read an allowed file:
  %[4]s 'print(fs.read("%[3]s/logs/app.log"))'

list an allowed directory:
  %[4]s 'for e in fs.list("%[3]s/logs"): print(e.name, e.type)'

get denied (exit status 13, ACCESS_DENIED naming the policy):
  %[4]s 'print(fs.read("%[3]s/secrets/token"))'

get denied through a symlink that points into secrets/:
  %[4]s 'print(fs.read("%[3]s/logs/token-link"))'

observe a denial and carry on:
  %[4]s 'v, err = catch(fs.read, "%[3]s/secrets/token"); print(err.kind if err else v)'

copy an allowed file here with scp (through the sftp subsystem, under the same policy):
  %[5]s%[3]s/logs/app.log .

watch decisions:
  tail -f %[2]s/audit.log
`, addr, e.dir, e.sandbox, ssh, scp)
}
