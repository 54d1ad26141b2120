package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/metrics"
	"github.com/keyhole-dev/keyhole/sshserver"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve --config FILE | --check-config FILE [--strict]", stdout)
	cfgPath := fs.String("config", "", "TOML configuration `file` to serve")
	addrFile := fs.String("addr-file", "", "write the listening address to this `file` once listening")
	metricsAddrFile := fs.String("metrics-addr-file", "", "write the metrics endpoint's address to this `file` once listening")
	checks := addServeChecks(fs)
	logFormat := fs.String("log-format", "", "server log `format`: text or json (default: text on a terminal, json otherwise)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checks.validate(*cfgPath); err != nil {
		return err
	}
	if checks.checkConfig != "" {
		return checks.run(ctx, stdout, stderr)
	}
	if err := checkLogFormat(*logFormat); err != nil {
		return err
	}
	if *cfgPath == "" {
		return &usageError{"serve needs --config FILE"}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	cfg.logFormat = *logFormat
	srv, err := startServer(cfg, stderr)
	if err != nil {
		return err
	}
	defer srv.close()
	checks.warnShell(ctx, cfg, stderr)
	fmt.Fprintf(stderr, "keyhole: listening on %s\n", srv.addr())
	fmt.Fprintf(stderr, "keyhole: host key %s (%s)\n", gossh.FingerprintSHA256(srv.hostKey), srv.hostKey.Type())
	fmt.Fprintf(stderr, "keyhole: known_hosts line: %s\n", knownHostsLine(srv.addr(), srv.hostKey))
	if srv.metrics != nil {
		fmt.Fprintf(stderr, "keyhole: metrics on http://%s/metrics\n", srv.metrics.Addr())
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(srv.addr()+"\n"), 0o644); err != nil {
			return fmt.Errorf("write address file: %w", err)
		}
	}
	if *metricsAddrFile != "" {
		if srv.metrics == nil {
			return fmt.Errorf("--metrics-addr-file: config %s sets no metrics_listen", *cfgPath)
		}
		if err := os.WriteFile(*metricsAddrFile, []byte(srv.metrics.Addr()+"\n"), 0o644); err != nil {
			return fmt.Errorf("write metrics address file: %w", err)
		}
	}
	return srv.wait(ctx, nil)
}

// knownHostsLine is the known_hosts line for key at the listening address
// addr, as OpenSSH writes it: "host" on port 22, "[host]:port" on any
// other. A server listening on every address is named by this host's name.
func knownHostsLine(addr string, key gossh.PublicKey) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "22"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			host = name
		}
	}
	return knownhosts.Line([]string{net.JoinHostPort(host, port)}, key)
}

// running is a started server.
type running struct {
	ln      net.Listener
	hostKey gossh.PublicKey
	srv     *sshserver.Server
	audit   *auditOutputs
	errc    chan error // the first error that stops the server: SSH's or the metrics endpoint's
	policy  *authz.Store
	metrics *metrics.Server // nil without metrics_listen
	log     *logrus.Logger
	grace   time.Duration // shutdown_grace (shutdown.go)

	// hup receives SIGHUP from startServer on (so a HUP that arrives once
	// the address is written is never fatal); wait runs every onHUP
	// function for each one, in order. Reloading never stops the server.
	hup   chan os.Signal
	onHUP []func()
	// usr1 receives SIGUSR1 (reopen the audit log), term SIGTERM and
	// SIGINT (shutdown.go).
	usr1, term chan os.Signal
	// stopWatch ends the policy directory watcher; watchDone is closed
	// when it has returned.
	stopWatch context.CancelFunc
	watchDone <-chan struct{}
}

func (r *running) addr() string { return r.ln.Addr().String() }

// wait blocks until the server fails, or ctx ends or SIGTERM or SIGINT
// comes; then it calls onStop (if any), stops the server gracefully
// (shutdown.go) and returns.
func (r *running) wait(ctx context.Context, onStop func()) error {
	terms := 0
	for {
		select {
		case err := <-r.errc:
			return err
		case <-r.hup:
			for _, f := range r.onHUP {
				f()
			}
		case <-r.usr1:
			r.reopenAudit()
		case <-r.term:
			terms++
		case <-ctx.Done():
		}
		if terms > 0 || ctx.Err() != nil {
			if onStop != nil {
				onStop()
			}
			return r.shutdown(terms)
		}
	}
}

func (r *running) close() {
	r.stopSignals()
	r.stopWatch()
	<-r.watchDone
	_ = r.srv.Close()
	if r.metrics != nil {
		_ = r.metrics.Close()
	}
	_ = r.audit.Close()
}

// startServer loads everything cfg names and starts listening.
func startServer(cfg *config, stderr io.Writer) (*running, error) {
	// Everything that can be checked is checked before anything is
	// created on disk.
	worker, err := selfWorker()
	if err != nil {
		return nil, err
	}
	auth, err := loadAuthenticator(cfg, stderr)
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
	signers, err := hostSigners(cfg, hostKey)
	if err != nil {
		return nil, err
	}
	log := newServerLog(stderr, cfg.logFormat)
	m := newMetrics(cfg) // nil: no metrics endpoint
	if m != nil {
		m.PolicyLoaded(ps.Version())
	}
	aw, err := openAudit(cfg, func(err error) {
		m.AuditWritable(err == nil)
		if err != nil {
			log.WithError(err).Error("audit log unwritable: operations stopped, new sessions refused")
		} else {
			log.Info("audit log writable again")
		}
	})
	if err != nil {
		return nil, err
	}
	raiseNoFile(log)
	storeOpts := authz.StoreOptions{Audit: aw.sink, Log: log}
	if m != nil {
		storeOpts.OnReload = m.PolicyReloaded
	}
	store, err := authz.NewStore(cfg.PolicyDir, ps, storeOpts)
	if err != nil {
		aw.Close()
		return nil, err
	}
	var observer sshserver.Observer // a nil *metrics.Metrics must stay a nil Observer
	if m != nil {
		observer = m
	}
	srv, err := sshserver.New(sshserver.Config{
		HostSigners: signers,
		Auth:        auth,
		Policy:      store,
		Audit:       aw.sink,
		Log:         log,
		Worker:      worker,
		Limits: sshserver.Limits{
			MaxSteps:    uint64(cfg.Limits.MaxSteps),
			MaxWall:     cfg.Limits.MaxWall.Duration,
			MaxOutput:   cfg.Limits.MaxOutput.Bytes,
			LoginGrace:  cfg.Limits.LoginGrace.Duration,
			IdleTimeout: cfg.Limits.IdleTimeout.Duration,

			MaxAuthTries:         cfg.Limits.MaxAuthTries,
			MaxStartups:          cfg.Limits.MaxStartups,
			MaxStartupsPerSource: cfg.Limits.MaxStartupsPerSource,

			MaxMemory:          cfg.Limits.MaxMemory.Bytes,
			MaxRead:            cfg.Limits.MaxRead.Bytes,
			MaxWrite:           cfg.Limits.MaxWrite.Bytes,
			MaxSessions:        cfg.Limits.MaxSessions,
			MaxSessionsPerUser: cfg.Limits.MaxSessionsPerUser,
			MaxOperations:      cfg.Limits.MaxOperations,

			MaxConnections:        cfg.Limits.MaxConnections,
			MaxConnectionsPerUser: cfg.Limits.MaxConnectionsPerUser,
		},
		ServiceManager: cfg.ServiceManager,
		WorkerParked:   parkedWorkers(cfg.ParkedWorkers),
		Observer:       observer,
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
	// errc has room for both senders: Serve's end and the metrics
	// endpoint's failure.
	r := &running{ln: ln, hostKey: hostKey.PublicKey(), srv: srv, audit: aw, errc: make(chan error, 2), policy: store,
		log: log, grace: shutdownGrace(cfg)}
	if r.metrics, err = startMetrics(cfg, m, r.errc); err != nil {
		_ = ln.Close()
		_ = srv.Close()
		aw.Close()
		return nil, err
	}
	// SIGHUP reloads the policy (and whatever else registers in onHUP);
	// a file change in policy_dir reloads it too. SIGUSR1, SIGTERM and
	// SIGINT: shutdown.go.
	r.notifySignals()
	r.onHUP = append(r.onHUP, func() { _, _, _ = store.Reload(authz.TriggerSignal) })
	var watchCtx context.Context
	watchCtx, r.stopWatch = context.WithCancel(context.Background())
	// keys_file and revoked_keys: reloaded on SIGHUP and on change.
	r.onHUP = append(r.onHUP, func() { _ = auth.Reload() })
	authDone, err := auth.Watch(watchCtx, 0)
	if err != nil {
		log.WithError(err).Warn("keyhole: keys_file and revoked_keys are not watched for changes; reload with SIGHUP")
	}
	policyDone, err := store.Watch(watchCtx)
	if err != nil {
		log.WithError(err).Warn("keyhole: policy_dir is not watched for changes; reload with SIGHUP")
	}
	// watchDone is closed once both watchers have stopped (a nil channel:
	// that watcher never started).
	watchDone := make(chan struct{})
	r.watchDone = watchDone
	go func() {
		defer close(watchDone)
		for _, c := range []<-chan struct{}{authDone, policyDone} {
			if c != nil {
				<-c
			}
		}
	}()
	go func() { r.errc <- srv.Serve(ln) }()
	return r, nil
}

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit: every
// connection and every running script takes descriptors, and the server
// refuses new connections once few are left (sshserver's listener). The Go
// runtime does the same when it starts; doing it here says so in the log
// if it cannot.
func raiseNoFile(log logrus.FieldLogger) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		log.WithError(err).Warn("keyhole: cannot read the open file limit")
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			log.WithError(err).Warn("keyhole: cannot raise the open file limit")
		}
	}
}

// parkedWorkers maps the parked_workers key to sshserver.Config's
// WorkerParked: unset is the default (0 there), 0 is none (negative there).
func parkedWorkers(n *int) int {
	switch {
	case n == nil:
		return 0
	case *n == 0:
		return -1
	}
	return *n
}
