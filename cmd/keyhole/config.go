package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// config is the TOML configuration of "keyhole serve" (DESIGN.md,
// "Configuration"). Relative paths are relative to the config file.
type config struct {
	Listen            string   `toml:"listen"`
	HostKey           string   `toml:"host_key"`
	TrustedUserCAKeys string   `toml:"trusted_user_ca_keys"`
	KeysFile          string   `toml:"keys_file"`
	RevokedKeys       string   `toml:"revoked_keys"`
	HostCertificate   string   `toml:"host_certificate"`
	PolicyDir         string   `toml:"policy_dir"`
	AuditLog          string   `toml:"audit_log"`
	ServiceManager    []string `toml:"service_manager"` // svc.* runs it + action, "--", name; unset: ["systemctl"]
	MetricsListen     string   `toml:"metrics_listen"`  // host:port of the Prometheus endpoint; "": none (metrics.go)
	// ParkedWorkers is how many workers are kept for the next script of
	// the principal whose script they ran (docs/WORKER.md); unset:
	// worker.DefaultParked, 0: none, every worker runs one script.
	ParkedWorkers *int         `toml:"parked_workers"`
	Limits        limitsConfig `toml:"limits"`

	// AuditSyslog sends every audit line to the local syslog as well as
	// to the audit_log file (auditlog.go).
	AuditSyslog bool `toml:"audit_syslog"`
	// ShutdownGrace is how long running scripts may go on after SIGTERM or
	// SIGINT (shutdown.go); unset means defaultShutdownGrace.
	ShutdownGrace *duration `toml:"shutdown_grace"`

	// logFormat is the server log's format: "text", "json", or "" to
	// choose by whether stderr is a terminal (serve's --log-format).
	logFormat string
}

type limitsConfig struct {
	MaxSteps    int64    `toml:"max_steps"`
	MaxWall     duration `toml:"max_wall"`
	MaxOutput   size     `toml:"max_output"`
	LoginGrace  duration `toml:"login_grace"`
	IdleTimeout duration `toml:"idle_timeout"`
	// Authentication limits (see identity.go); 0 means the default.
	MaxAuthTries         int `toml:"max_auth_tries"`
	MaxStartups          int `toml:"max_startups"`
	MaxStartupsPerSource int `toml:"max_startups_per_source"`
	// Per-script memory and bytes moved, and concurrent sessions; 0 means
	// the default (max_memory: 512MiB) or no cap (the others).
	MaxMemory          size `toml:"max_memory"`
	MaxRead            size `toml:"max_read"`
	MaxWrite           size `toml:"max_write"`
	MaxSessions        int  `toml:"max_sessions"`
	MaxSessionsPerUser int  `toml:"max_sessions_per_user"`
	// MaxOperations caps the decisions (audit lines) of one script; 0
	// means sshserver.DefaultMaxOperations.
	MaxOperations int64 `toml:"max_operations"`
	// Authenticated connections, in total and per user id; 0 means
	// sshserver.DefaultMaxConnections and DefaultMaxConnectionsPerUser.
	MaxConnections        int `toml:"max_connections"`
	MaxConnectionsPerUser int `toml:"max_connections_per_user"`
}

// minMaxMemory is the smallest limits.max_memory accepted: below it no
// worker can even start its runtime.
const minMaxMemory = 16 << 20

// checkLimitsConfig checks the session and script limits and the service
// manager.
func checkLimitsConfig(c *config, path string) error {
	l := c.Limits
	if l.MaxSessions < 0 || l.MaxSessionsPerUser < 0 {
		return fmt.Errorf("config %s: limits.max_sessions and limits.max_sessions_per_user must not be negative", path)
	}
	if l.MaxSessions > 0 && l.MaxSessionsPerUser > l.MaxSessions {
		return fmt.Errorf("config %s: limits.max_sessions_per_user (%d) is larger than limits.max_sessions (%d)",
			path, l.MaxSessionsPerUser, l.MaxSessions)
	}
	if l.MaxConnections < 0 || l.MaxConnectionsPerUser < 0 {
		return fmt.Errorf("config %s: limits.max_connections and limits.max_connections_per_user must not be negative", path)
	}
	if l.MaxConnections > 0 && l.MaxConnectionsPerUser > l.MaxConnections {
		return fmt.Errorf("config %s: limits.max_connections_per_user (%d) is larger than limits.max_connections (%d)",
			path, l.MaxConnectionsPerUser, l.MaxConnections)
	}
	if l.MaxMemory.Bytes != 0 && l.MaxMemory.Bytes < minMaxMemory {
		return fmt.Errorf("config %s: limits.max_memory of %d bytes is below the minimum of 16MiB", path, l.MaxMemory.Bytes)
	}
	if c.ParkedWorkers != nil && *c.ParkedWorkers < 0 {
		return fmt.Errorf("config %s: parked_workers must not be negative (0 turns worker reuse off)", path)
	}
	if c.ServiceManager != nil {
		if len(c.ServiceManager) == 0 {
			return fmt.Errorf("config %s: service_manager must not be empty (leave it out for [\"systemctl\"])", path)
		}
		for i, a := range c.ServiceManager {
			if a == "" || strings.IndexByte(a, 0) >= 0 {
				return fmt.Errorf("config %s: service_manager[%d] must be a non-empty string without NUL bytes", path, i)
			}
		}
		if m := c.ServiceManager[0]; !filepath.IsAbs(m) && strings.Contains(m, "/") {
			return fmt.Errorf("config %s: service_manager[0] %q must be an absolute path or a name without a slash", path, m)
		}
	}
	return nil
}

// duration is a Go duration string in TOML.
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. \"5s\", \"10m\")", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q must not be negative", b)
	}
	d.Duration = v
	return nil
}

// size is a byte count: an integer, or a string with a unit ("512MiB").
type size struct{ Bytes int64 }

func (s *size) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("size %d must not be negative", x)
		}
		s.Bytes = x
		return nil
	case string:
		n, err := parseSize(x)
		if err != nil {
			return err
		}
		s.Bytes = n
		return nil
	}
	return fmt.Errorf("size must be an integer or a string like \"512MiB\", got %T", v)
}

func parseSize(str string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"B", 1}}
	t := strings.TrimSpace(str)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1048576 or \"512MiB\")", str)
	}
	return n * mult, nil
}

// misplacedKey suggests where an unknown key belongs when it is a known
// key in the wrong table: a limit written before [limits], or a top-level
// key written after it (TOML puts every key after a [table] header in
// that table).
func misplacedKey(k toml.Key) string {
	switch {
	case len(k) == 1 && hasTOMLKey(limitsConfig{}, k[0]):
		return fmt.Sprintf("did you mean [limits] %s? write it after the [limits] header", k[0])
	case len(k) == 2 && k[0] == "limits" && hasTOMLKey(config{}, k[1]) && k[1] != "limits":
		return fmt.Sprintf("did you mean %s at the top level? write it before the [limits] header", k[1])
	}
	return ""
}

// hasTOMLKey reports whether the struct v has a field with TOML key name.
func hasTOMLKey(v any, name string) bool {
	t := reflect.TypeOf(v)
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); tag == name {
			return true
		}
	}
	return false
}

// loadConfig reads and checks the config file at path.
func loadConfig(path string) (*config, error) {
	var c config
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return nil, decodeError(path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		err := fmt.Errorf("config %s: unknown key %s", at(path, keyLine(path, und[0])), strings.Join(keys, ", "))
		if hint := misplacedKey(und[0]); hint != "" {
			return nil, &hinted{err, hint}
		}
		return nil, err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		// trusted_user_ca_keys may be left out when keys_file lists plain keys.
		{"listen", c.Listen}, {"host_key", c.HostKey}, {"trusted_user_ca_keys", c.TrustedUserCAKeys + c.KeysFile},
		{"policy_dir", c.PolicyDir}, {"audit_log", c.AuditLog},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("config %s: missing required key %s", path, strings.Join(missing, ", "))
	}
	if c.Limits.MaxSteps < 0 {
		return nil, errors.New("config: limits.max_steps must not be negative")
	}
	if c.Limits.MaxOperations < 0 {
		return nil, fmt.Errorf("config %s: limits.max_operations must not be negative", path)
	}
	if err := checkIdentityConfig(&c, path); err != nil {
		return nil, err
	}
	if err := checkLimitsConfig(&c, path); err != nil {
		return nil, err
	}
	if err := checkMetricsConfig(&c, path); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := checkAuditConfig(&c, path); err != nil {
		return nil, err
	}
	for _, p := range []*string{&c.HostKey, &c.TrustedUserCAKeys, &c.PolicyDir, &c.AuditLog} {
		if *p != "" && *p != "-" && *p != auditLogSyslog && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return &c, nil
}
