package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/sshserver"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve --config FILE", stderr)
	cfgPath := fs.String("config", "", "TOML configuration `file` (required)")
	addrFile := fs.String("addr-file", "", "write the listening address to this `file` once listening")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return &usageError{"serve needs --config FILE"}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	srv, err := startServer(cfg, stderr)
	if err != nil {
		return err
	}
	defer srv.close()
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(srv.addr()+"\n"), 0o644); err != nil {
			return fmt.Errorf("write address file: %w", err)
		}
	}
	fmt.Fprintf(stderr, "keyhole: listening on %s\n", srv.addr())
	return srv.wait(ctx, nil)
}

// policyHolder is the current policy set, swapped whole.
type policyHolder struct {
	p atomic.Pointer[authz.PolicySet]
}

func (h *policyHolder) Current() *authz.PolicySet { return h.p.Load() }

// running is a started server.
type running struct {
	ln    net.Listener
	srv   *sshserver.Server
	audit *audit.Writer
	errc  chan error
}

func (r *running) addr() string { return r.ln.Addr().String() }

// wait blocks until the server fails or ctx ends, then calls onStop (if
// any) and returns.
func (r *running) wait(ctx context.Context, onStop func()) error {
	select {
	case err := <-r.errc:
		return err
	case <-ctx.Done():
		if onStop != nil {
			onStop()
		}
		return nil
	}
}

func (r *running) close() {
	_ = r.srv.Close()
	_ = r.audit.Close()
}

// startServer loads everything cfg names and starts listening.
func startServer(cfg *config, stderr io.Writer) (*running, error) {
	// Everything that can be checked is checked before anything is
	// created on disk.
	cas, err := keys.LoadTrustedCAs(cfg.TrustedUserCAKeys)
	if err != nil {
		return nil, err
	}
	ps, err := authz.Load(cfg.PolicyDir)
	if err != nil {
		return nil, &hinted{err, "fix the policy files named above; no policy was loaded"}
	}
	hostKey, err := keys.LoadOrCreateHostKey(cfg.HostKey)
	if err != nil {
		return nil, err
	}
	aw, err := audit.Open(cfg.AuditLog)
	if err != nil {
		return nil, err
	}
	var holder policyHolder
	holder.p.Store(ps)
	log := logrus.New()
	log.SetOutput(stderr)
	srv, err := sshserver.New(sshserver.Config{
		HostSigners: []gossh.Signer{hostKey},
		Auth:        &keys.CertRules{CAs: cas},
		Policy:      &holder,
		Audit:       aw,
		Log:         log,
		Limits: sshserver.Limits{
			MaxSteps:    uint64(cfg.Limits.MaxSteps),
			MaxWall:     cfg.Limits.MaxWall.Duration,
			MaxOutput:   cfg.Limits.MaxOutput.Bytes,
			LoginGrace:  cfg.Limits.LoginGrace.Duration,
			IdleTimeout: cfg.Limits.IdleTimeout.Duration,
		},
	})
	if err != nil {
		aw.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		aw.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	r := &running{ln: ln, srv: srv, audit: aw, errc: make(chan error, 1)}
	go func() { r.errc <- srv.Serve(ln) }()
	return r, nil
}
