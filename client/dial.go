package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config says how a Dialer connects. The zero value connects as OpenSSH
// would with no configuration: the local user name, the default
// identities and ssh-agent, ~/.ssh/known_hosts, port 22.
type Config struct {
	// User is the login name for targets that name none; "" means the
	// local user's name.
	User string
	// Identities are private key files (ssh -i); each is offered with the
	// certificate beside it (<key>-cert.pub) first. Empty means the
	// default identities that exist (DefaultIdentities).
	Identities []string
	// AgentSocket is the ssh-agent's socket; "" means $SSH_AUTH_SOCK.
	AgentSocket string
	// NoAgent leaves the ssh-agent out.
	NoAgent bool
	// KnownHosts are the known_hosts files; empty means DefaultKnownHosts.
	KnownHosts []string
	// Jump is a ProxyJump chain for targets that name none:
	// "[user@]host[:port][,…]", each hop an OpenSSH server reached
	// through the one before; "" or "none" means a direct connection.
	Jump string
	// ConnectTimeout bounds the TCP connection and the SSH handshake of
	// each hop; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// MaxOutput caps the bytes of events and stderr one script may send
	// before Run gives up on it; 0 means DefaultMaxOutput.
	MaxOutput int64
}

// Defaults of Config.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultMaxOutput      = 64 << 20
)

// Target is one host to connect to. It is what an inventory entry
// becomes: Name is how results name the host, Addr where to connect.
type Target struct {
	Name string `json:"name"` // shown in results; "" means Addr
	Addr string `json:"addr"` // host name or IP address
	Port int    `json:"port"` // 0 means 22
	User string `json:"user"` // "" means Config.User
	Jump string `json:"jump"` // ProxyJump chain; "" means Config.Jump, "none" a direct connection
}

// String is the target's name.
func (t Target) String() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Addr
}

// address is host:port.
func (t Target) address() string {
	port := t.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(t.Addr, strconv.Itoa(port))
}

// ParseTarget parses a destination as ssh takes it: [user@]host[:port],
// with an IPv6 address in brackets when it has a port ([::1]:2222). The
// name is the destination as given.
func ParseTarget(dest string) (Target, error) {
	t := Target{Name: dest}
	rest := dest
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		t.User, rest = rest[:i], rest[i+1:]
		if t.User == "" {
			return Target{}, fmt.Errorf("client: destination %q: empty user", dest)
		}
	}
	host, port := rest, ""
	switch {
	case strings.HasPrefix(rest, "["):
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			end := strings.Index(rest, "]")
			if end < 0 || end != len(rest)-1 {
				return Target{}, fmt.Errorf("client: destination %q: %w", dest, err)
			}
			h = rest[1:end]
		}
		host, port = h, p
	case strings.Count(rest, ":") == 1:
		host, port, _ = strings.Cut(rest, ":")
	}
	if host == "" {
		return Target{}, fmt.Errorf("client: destination %q: empty host", dest)
	}
	if strings.HasPrefix(host, "-") || strings.ContainsAny(host, " \t/\\") {
		return Target{}, fmt.Errorf("client: destination %q: bad host name", dest)
	}
	t.Addr = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return Target{}, fmt.Errorf("client: destination %q: bad port %q", dest, port)
		}
		t.Port = n
	}
	return t, nil
}

// Dialer connects to hosts. It holds what every connection shares: the
// identities, the ssh-agent connection and the known hosts. It is safe
// for concurrent use; Close it when done.
type Dialer struct {
	cfg      Config
	user     string
	ids      *identities
	hostKeys *hostKeys
}

// NewDialer loads the identities, the agent's keys and the known hosts.
func NewDialer(cfg Config) (*Dialer, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = DefaultMaxOutput
	}
	if cfg.Jump != "" && cfg.Jump != "none" {
		if _, err := parseJump(cfg.Jump); err != nil {
			return nil, err
		}
	}
	name := cfg.User
	if name == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("client: no user given and the local user is unknown: %w", err)
		}
		name = u.Username
	}
	files := cfg.KnownHosts
	if len(files) == 0 {
		files = DefaultKnownHosts()
	}
	hk, err := loadHostKeys(files)
	if err != nil {
		return nil, err
	}
	sock := cfg.AgentSocket
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	ids, err := loadIdentities(cfg.Identities, sock, !cfg.NoAgent)
	if err != nil {
		return nil, err
	}
	return &Dialer{cfg: cfg, user: name, ids: ids, hostKeys: hk}, nil
}

// Close closes the agent connection. Clients already made keep working
// for scripts; new connections fail.
func (d *Dialer) Close() error {
	d.ids.close()
	return nil
}

// Dial connects to dest ([user@]host[:port]) with cfg; Close the Client
// to close the Dialer too.
func Dial(ctx context.Context, dest string, cfg Config) (*Client, error) {
	t, err := ParseTarget(dest)
	if err != nil {
		return nil, err
	}
	d, err := NewDialer(cfg)
	if err != nil {
		return nil, err
	}
	c, err := d.Dial(ctx, t)
	if err != nil {
		d.Close()
		return nil, err
	}
	c.dialer = d
	return c, nil
}

// Dial connects to t, through its jump hosts if it has any. Each hop's
// TCP connection and handshake is bounded by the connect timeout and by
// ctx; ctx ending later does not close the connection.
func (d *Dialer) Dial(ctx context.Context, t Target) (*Client, error) {
	if t.Addr == "" {
		return nil, fmt.Errorf("client: target %q has no address", t.Name)
	}
	jump := t.Jump
	if jump == "" {
		jump = d.cfg.Jump
	}
	var hops []Target
	if jump != "" && jump != "none" {
		var err error
		if hops, err = parseJump(jump); err != nil {
			return nil, err
		}
	}
	hops = append(hops, t)
	var via *ssh.Client
	var chain []*ssh.Client
	closeAll := func() {
		for i := len(chain) - 1; i >= 0; i-- {
			chain[i].Close()
		}
	}
	for i, h := range hops {
		c, err := d.dialHop(ctx, via, h)
		if err != nil {
			closeAll()
			if i < len(hops)-1 {
				return nil, &JumpError{Hop: h.String(), Err: err}
			}
			return nil, err
		}
		chain = append(chain, c)
		via = c
	}
	return &Client{target: t, ssh: via, jumps: chain[:len(chain)-1], maxOutput: d.cfg.MaxOutput}, nil
}

// JumpError is a failure to reach or log in to a jump host.
type JumpError struct {
	Hop string
	Err error
}

func (e *JumpError) Error() string { return fmt.Sprintf("jump host %s: %v", e.Hop, e.Err) }
func (e *JumpError) Unwrap() error { return e.Err }

// parseJump parses a ProxyJump chain: comma-separated [user@]host[:port]
// or, as OpenSSH takes them too, ssh://[user@]host[:port].
func parseJump(s string) ([]Target, error) {
	var out []Target
	for _, part := range strings.Split(s, ",") {
		t, err := ParseTarget(strings.TrimPrefix(strings.TrimSpace(part), "ssh://"))
		if err != nil {
			return nil, fmt.Errorf("client: jump %q: %w", s, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// dialHop connects to h, directly or through via, and logs in.
func (d *Dialer) dialHop(ctx context.Context, via *ssh.Client, h Target) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout)
	defer cancel()
	addr := h.address()
	var conn net.Conn
	var err error
	if via == nil {
		var nd net.Dialer
		conn, err = nd.DialContext(ctx, "tcp", addr)
	} else {
		conn, err = via.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			return nil, fmt.Errorf("connect to %s: %w", addr, context.Canceled)
		case ctx.Err() != nil:
			return nil, &TimeoutError{Op: "connect to " + addr, Err: err}
		}
		return nil, &UnreachableError{Addr: addr, Err: err}
	}
	login := h.User
	if login == "" {
		login = d.user
	}
	cfg := &ssh.ClientConfig{
		User:              login,
		Auth:              []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) { return d.ids.signers, nil })},
		HostKeyCallback:   d.hostKeys.callback(addr),
		HostKeyAlgorithms: d.hostKeys.algorithms(addr),
	}
	// The handshake has no context: closing the connection ends it.
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			conn.Close()
		case <-done:
		}
	}()
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	close(done)
	<-stopped
	if err != nil {
		conn.Close()
		return nil, classifyHandshake(ctx, addr, login, err)
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// AuthError is a server refusing every identity offered.
type AuthError struct {
	Addr, User string
	Err        error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("authentication refused by %s for user %s: %v", e.Addr, e.User, e.Err)
}
func (e *AuthError) Unwrap() error { return e.Err }

// UnreachableError is a host with which no connection could be made.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	var oe *net.OpError
	if errors.As(e.Err, &oe) {
		return e.Err.Error() // names the address already
	}
	return fmt.Sprintf("connect to %s: %v", e.Addr, e.Err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// TimeoutError is a connection or a script that ran out of time.
type TimeoutError struct {
	Op  string
	Err error
}

func (e *TimeoutError) Error() string { return fmt.Sprintf("%s: timed out", e.Op) }
func (e *TimeoutError) Unwrap() error { return e.Err }

// classifyHandshake names why a handshake failed.
func classifyHandshake(ctx context.Context, addr, login string, err error) error {
	var he *HostKeyError
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("ssh handshake with %s: %w", addr, context.Canceled)
	case ctx.Err() != nil:
		return &TimeoutError{Op: "ssh handshake with " + addr, Err: err}
	case strings.Contains(err.Error(), "unable to authenticate"):
		return &AuthError{Addr: addr, User: login, Err: err}
	}
	return fmt.Errorf("ssh handshake with %s: %w", addr, err)
}
