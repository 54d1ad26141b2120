package sshserver

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"sync"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/worker"
)

// Limits bound what one session may use.
type Limits struct {
	MaxSteps    uint64
	MaxWall     time.Duration
	MaxOutput   int64
	MaxMemory   int64         // bytes of a script's worker process; 0 means DefaultMaxMemory
	MaxStack    int64         // bytes of the interpreter's stack in the worker; 0 means DefaultMaxStack
	MaxScript   int64         // bytes of script read from a subsystem's stdin
	LoginGrace  time.Duration // time to authenticate; 0 means 30s
	IdleTimeout time.Duration // closes a connection idle this long, no script running; 0 means DefaultIdleTimeout
	// MaxAuthTries caps failed authentication attempts per connection; 0
	// means DefaultMaxAuthTries.
	MaxAuthTries int
	// MaxStartups caps connections that have not authenticated yet;
	// MaxStartupsPerSource caps them per source address. 0 means
	// DefaultMaxStartups and DefaultMaxStartupsPerSource.
	MaxStartups          int
	MaxStartupsPerSource int
	// MaxSessions caps the session channels open at once, in total;
	// MaxSessionsPerUser caps them per user id. 0 means no cap. A session
	// past a cap is refused (and audited) when it is opened.
	MaxSessions        int
	MaxSessionsPerUser int
	// MaxConnections caps the authenticated connections open at once, in
	// total; MaxConnectionsPerUser caps them per user id. 0 means
	// DefaultMaxConnections and DefaultMaxConnectionsPerUser. A connection
	// past a cap is refused when it authenticates (and audited).
	MaxConnections        int
	MaxConnectionsPerUser int
	// MaxRead and MaxWrite cap the bytes one script reads from and writes
	// to the host, in total (hostops.Counters); 0 means no cap.
	MaxRead  int64
	MaxWrite int64
	// MaxExecOutput caps the bytes of stdout and of stderr each kept from
	// one program a script runs; 0 means hostops.DefaultMaxExecOutput.
	MaxExecOutput int64
	// MaxOperations caps the decisions one script's operations make (each
	// an audit line: allowed or denied, allowed() included); past it the
	// script ends with LIMIT_EXCEEDED. 0 means DefaultMaxOperations.
	MaxOperations int64
}

// DefaultMaxOperations is the default cap on the decisions of one script:
// far more than a script that does real work makes, and some 30 MB of
// audit log at most.
const DefaultMaxOperations = 100_000

// DefaultIdleTimeout is the default Limits.IdleTimeout.
const DefaultIdleTimeout = 10 * time.Minute

// Defaults of the authenticated-connection caps.
const (
	DefaultMaxConnections        = 1000
	DefaultMaxConnectionsPerUser = 32
)

// DefaultMaxScript is the default cap on a script read from stdin.
const DefaultMaxScript = 1 << 20

// Authenticator decides whether a key may log in; *keys.Authenticator
// (certificates, keys file, KRL) and *keys.CertRules are two.
type Authenticator interface {
	Check(key gossh.PublicKey, login string, source net.Addr) (*keys.Identity, error)
}

// PolicySource returns the policy set a new session should use.
type PolicySource interface {
	Current() *authz.PolicySet
}

// Config is what a Server needs. All fields but Log are required.
type Config struct {
	HostSigners []gossh.Signer
	Auth        Authenticator
	Policy      PolicySource
	Audit       audit.Sink
	Log         logrus.FieldLogger // server log; nil discards
	Limits      Limits
	Clock       func() time.Time // nil means time.Now
	// Worker makes the command of one worker process, which runs one
	// script (see worker.Command); the server adds the process hygiene. Nil
	// makes every script end with INTERNAL.
	Worker func() *exec.Cmd
	// WorkerPool is how many started workers wait for a script; 0 means
	// DefaultWorkerPool, negative none.
	WorkerPool int
	// WorkerParked is how many workers whose script ended cleanly are kept
	// for the next script of the same principal under the same limits
	// (worker.Config.Parked; docs/WORKER.md); 0 means worker.DefaultParked,
	// negative none: every worker then runs one script.
	WorkerParked int
	// ServiceManager is the command svc.* runs (hostops.Host's field of
	// that name); empty means hostops.DefaultServiceManager().
	ServiceManager []string
	// Observer, if set, is told of sessions, refusals, decisions, limits
	// and the worker pool, for metrics (observe.go); nil means none.
	Observer Observer
}

// Server is a keyhole SSH server.
type Server struct {
	cfg      Config
	srv      *gliderssh.Server
	startups *startups
	open     *openSessions
	conns    *openSessions // authenticated connections (connections.go)
	refusals *refusals     // rate-limits the audit lines of refused connections

	mu       sync.Mutex
	sessions sync.WaitGroup
	active   activeSessions // shutdown.go
	pool     *worker.Pool

	// lnMu guards closed and listeners: Serve registers its listener, or
	// finds the server closed, under it, so that a Close that races with
	// a Serve that has not started accepting still stops it.
	lnMu      sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
}

// identityKey is the ExtraData key under which the authenticating key's
// identity is stored in its Permissions.
type identityKey struct{}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if len(cfg.HostSigners) == 0 {
		return nil, errors.New("sshserver: no host key")
	}
	if cfg.Auth == nil || cfg.Policy == nil || cfg.Audit == nil {
		return nil, errors.New("sshserver: auth, policy and audit are required")
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.Out = io.Discard
		cfg.Log = l
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Limits.MaxMemory == 0 {
		cfg.Limits.MaxMemory = DefaultMaxMemory
	}
	if cfg.Limits.MaxScript == 0 {
		cfg.Limits.MaxScript = DefaultMaxScript
	}
	if cfg.Limits.LoginGrace == 0 {
		cfg.Limits.LoginGrace = 30 * time.Second
	}
	if cfg.Limits.IdleTimeout == 0 {
		cfg.Limits.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Limits.MaxSessions < 0 || cfg.Limits.MaxSessionsPerUser < 0 || cfg.Limits.MaxRead < 0 || cfg.Limits.MaxWrite < 0 ||
		cfg.Limits.MaxOperations < 0 || cfg.Limits.MaxConnections < 0 || cfg.Limits.MaxConnectionsPerUser < 0 {
		return nil, errors.New("sshserver: session, byte and operation limits must not be negative")
	}
	s := &Server{cfg: cfg, startups: newStartups(cfg.Limits.MaxStartups, cfg.Limits.MaxStartupsPerSource),
		open: newOpenSessions(cfg.Limits.MaxSessions, cfg.Limits.MaxSessionsPerUser)}
	s.refusals = newRefusals(cfg.Audit, cfg.Clock)
	s.conns = newOpenConnections(cmp.Or(cfg.Limits.MaxConnections, DefaultMaxConnections),
		cmp.Or(cfg.Limits.MaxConnectionsPerUser, DefaultMaxConnectionsPerUser))
	poolSize := max(cfg.WorkerPool, 0)
	if cfg.WorkerPool == 0 {
		poolSize = DefaultWorkerPool
	}
	s.pool = worker.NewPool(worker.Config{Command: cfg.Worker, Size: poolSize, Policy: cfg.Policy.Current,
		Audit: cfg.Audit, Clock: cfg.Clock, Log: cfg.Log, Parked: cfg.WorkerParked,
		Observer: workerObserver(cfg.Observer)})
	signers := make([]gliderssh.Signer, len(cfg.HostSigners))
	for i, hs := range cfg.HostSigners {
		signers[i] = hs
	}
	s.srv = &gliderssh.Server{
		HostSigners:          signers,
		Version:              "keyhole",
		ServerConfigCallback: s.serverConfig,
		// Refusing keyboard-interactive keeps gliderlabs from turning on
		// NoClientAuth; public keys are checked by serverConfig's callback.
		KeyboardInteractiveHandler: func(gliderssh.Context, gossh.KeyboardInteractiveChallenge) bool { return false },
		ConnCallback:               s.connCallback,
		ConnectionFailedCallback:   s.connectionFailed,
		ChannelHandlers: map[string]gliderssh.ChannelHandler{
			"session": s.handleSession,
			"default": s.refuseChannel,
		},
		RequestHandlers: map[string]gliderssh.RequestHandler{
			"default": s.refuseGlobal,
		},
		SubsystemHandlers: map[string]gliderssh.SubsystemHandler{},
		Handler:           func(gliderssh.Session) {},
	}
	return s, nil
}

// Serve accepts connections on l until Close. New connections are closed
// as soon as they are accepted while the process is short of file
// descriptors (fds.go).
func (s *Server) Serve(l net.Listener) error {
	s.lnMu.Lock()
	if s.closed {
		s.lnMu.Unlock()
		_ = l.Close()
		return nil
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[l] = struct{}{}
	s.lnMu.Unlock()
	defer func() {
		s.lnMu.Lock()
		delete(s.listeners, l)
		s.lnMu.Unlock()
	}()
	err := s.srv.Serve(s.guardFDs(l))
	s.lnMu.Lock()
	closed := s.closed
	s.lnMu.Unlock()
	if closed || errors.Is(err, gliderssh.ErrServerClosed) {
		// gliderlabs forgets a Close that came before its Serve tracked
		// the listener (it takes that for a reuse of the server); the
		// listener Close closed is how that Serve ends.
		return nil
	}
	return err
}

// Close stops the listeners and closes every connection, then waits for
// the sessions' final audit lines. A Serve that starts after Close, or
// that Close overtakes before it accepts (gliderlabs only closes the
// listeners it has started accepting on), returns at once.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.lnMu.Lock()
	s.closed = true
	for l := range s.listeners {
		_ = l.Close()
	}
	s.lnMu.Unlock()
	s.refusals.close()
	s.sessions.Wait()
	s.pool.Close()
	return err
}

func (s *Server) serverConfig(ctx gliderssh.Context) *gossh.ServerConfig {
	cfg := &gossh.ServerConfig{PublicKeyCallback: s.limitedPublicKey(), MaxAuthTries: s.cfg.Limits.maxAuthTries()}
	if cs := connStateOf(ctx); cs != nil {
		cfg.VerifiedPublicKeyCallback = func(conn gossh.ConnMetadata, _ gossh.PublicKey, perms *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			return s.holdConnection(cs, conn, perms)
		}
	}
	if c, ok := ctx.Value(graceKey{}).(*graceConn); ok {
		cfg.AuthLogCallback = func(_ gossh.ConnMetadata, method string, err error) {
			if err == nil && method != "none" {
				c.authenticated()
			}
		}
	}
	return cfg
}

// publicKey authenticates one key. The Permissions it returns are fresh for
// each key, so the identity attached to the connection is that of the key
// whose signature was verified.
func (s *Server) publicKey(conn gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
	if err := s.auditReady(); err != nil {
		// Nothing a session does could be recorded: no key gets in.
		s.cfg.Log.WithError(err).WithField("source", hostOf(conn.RemoteAddr())).Warn("authentication refused: audit log unwritable")
		s.observeAuthRefused(reasonAuditUnwritable)
		return nil, errors.New("permission denied")
	}
	id, err := s.cfg.Auth.Check(key, conn.User(), conn.RemoteAddr())
	if err != nil {
		reason := err.Error()
		var re *keys.RefusedError
		if errors.As(err, &re) {
			reason = re.Reason
			if re.Detail != "" {
				reason += ": " + re.Detail
			}
		}
		s.refuseConn(conn.RemoteAddr(), audit.Event{
			Role:        conn.User(),
			Fingerprint: userKeyFingerprint(key),
			Reason:      reason,
		})
		return nil, errors.New("permission denied")
	}
	perms := &gossh.Permissions{ExtraData: map[any]any{identityKey{}: id}}
	if cert, ok := key.(*gossh.Certificate); ok && len(cert.CriticalOptions) > 0 {
		// x/crypto enforces source-address again from these.
		perms.CriticalOptions = map[string]string{}
		for k, v := range cert.CriticalOptions {
			perms.CriticalOptions[k] = v
		}
	}
	return perms, nil
}

func userKeyFingerprint(key gossh.PublicKey) string {
	if cert, ok := key.(*gossh.Certificate); ok {
		return gossh.FingerprintSHA256(cert.Key)
	}
	return gossh.FingerprintSHA256(key)
}

// identityOf returns the identity of an authenticated connection.
func identityOf(conn *gossh.ServerConn) (*keys.Identity, bool) {
	if conn == nil || conn.Permissions == nil {
		return nil, false
	}
	id, ok := conn.Permissions.ExtraData[identityKey{}].(*keys.Identity)
	return id, ok && id != nil
}

func (s *Server) connCallback(ctx gliderssh.Context, c net.Conn) net.Conn {
	release, reason := s.startups.acquire(addrOf(c.RemoteAddr()))
	if release == nil {
		s.refuseConn(c.RemoteAddr(), audit.Event{Reason: reason})
		return nil // gliderlabs closes c
	}
	g := newGraceConn(quickAckConn(c), s.cfg.Limits.LoginGrace, func() {
		s.refuseConn(c.RemoteAddr(), audit.Event{Reason: "login grace time exceeded"})
	}, release)
	ctx.SetValue(graceKey{}, g)
	var inner net.Conn = g
	if s.cfg.Limits.IdleTimeout > 0 {
		ic := newIdleConn(g, s.cfg.Limits.IdleTimeout) // idle.go: spares running scripts
		ctx.SetValue(idleKey{}, ic)
		inner = ic
	}
	cs := &connState{Conn: inner} // connections.go
	ctx.SetValue(connKey{}, cs)
	return cs
}

func (s *Server) refuseChannel(_ *gliderssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx gliderssh.Context) {
	if s.countRefusal(connStateOf(ctx), conn, "channel "+nc.ChannelType()) {
		s.auditConn(conn, audit.Event{Event: audit.RequestRefused, Request: "channel " + nc.ChannelType(), Reason: "channel type not allowed"})
	}
	_ = nc.Reject(gossh.Prohibited, "keyhole: channel type not allowed")
}

func (s *Server) refuseGlobal(ctx gliderssh.Context, _ *gliderssh.Server, req *gossh.Request) (bool, []byte) {
	if req.Type == "keepalive@openssh.com" {
		return false, nil // liveness probe, not a request for anything
	}
	conn, _ := ctx.Value(gliderssh.ContextKeyConn).(*gossh.ServerConn)
	if s.countRefusal(connStateOf(ctx), conn, req.Type) {
		s.auditConn(conn, audit.Event{Event: audit.RequestRefused, Request: req.Type, Reason: "global request not allowed"})
	}
	return false, nil
}

// auditReady returns nil when the audit log can take lines. While it is
// broken, each call tries to write its audit.resumed line (audit.Checker),
// so the server serves again as soon as the log is writable, with no
// restart. A Sink that is not a Checker is taken as ready; its Log still
// fails closed.
func (s *Server) auditReady() error {
	if c, ok := s.cfg.Audit.(audit.Checker); ok {
		return c.Ready()
	}
	return nil
}

// refuseConn writes the auth.refused line e of a connection from src that
// is refused before it has authenticated, rate-limited per source
// (refusals.go).
func (s *Server) refuseConn(src net.Addr, e audit.Event) {
	e.Time = s.cfg.Clock()
	e.Event = audit.AuthRefused
	e.Source = hostOf(src)
	s.observeAuthRefused(e.Reason)
	s.refusals.log(addrOf(src), e)
}

// auditConn logs e with the connection's identity filled in.
func (s *Server) auditConn(conn *gossh.ServerConn, e audit.Event) error {
	e.Time = s.cfg.Clock()
	if conn != nil {
		e.Source = hostOf(conn.RemoteAddr())
		e.Role = conn.User()
		if id, ok := identityOf(conn); ok {
			e.User = id.UserID
			e.Role = id.Role
			e.Fingerprint = id.Fingerprint
		}
	}
	return s.cfg.Audit.Log(e)
}

func hostOf(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	if a == nil {
		return ""
	}
	return a.String()
}

func addrOf(a net.Addr) netip.Addr {
	if tcp, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(tcp.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

func newSessionID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("sshserver: random: %v", err))
	}
	return hex.EncodeToString(b[:])
}
