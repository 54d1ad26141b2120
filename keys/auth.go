package keys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/watch"
)

// ErrRevocationUnusable refuses every key while the KRL cannot be read or
// parsed: revocation must fail closed.
var ErrRevocationUnusable = &RefusedError{Reason: "revocation list unusable"}

// AuthConfig names what an Authenticator decides from.
type AuthConfig struct {
	// CAs are the trusted user CAs; nil accepts no certificate.
	CAs *TrustedCAs
	// KeysFile is the path of the keys file; "" accepts no plain key.
	KeysFile string
	// RevokedKeys is the path of an OpenSSH KRL; "" revokes nothing.
	RevokedKeys string
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
	// Log is the server log, where reload failures are reported loudly;
	// nil discards.
	Log logrus.FieldLogger
}

// Authenticator decides every login: certificates by the OpenSSH
// certificate rules, plain keys by the keys file, and both against the KRL.
// The keys file and KRL are reloaded whole by Reload (SIGHUP) and Watch (on
// change). It is safe for concurrent use: Check reads one immutable
// snapshot, reloads are serialized by mu.
type Authenticator struct {
	cfg   AuthConfig
	certs *CertRules
	state atomic.Pointer[authState]

	mu     sync.Mutex // serializes Reload; guards stamps
	stamps [2]fileStamp
}

// authState is one loaded snapshot. A non-nil error makes the matching
// keys fail closed.
type authState struct {
	keys    *KeysFile
	keysErr error
	krl     *KRL
	krlErr  error
}

// NewAuthenticator loads the keys file and KRL. Unlike a reload, a load
// error here is returned, so a server does not start on a broken file.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.Out = io.Discard
		cfg.Log = l
	}
	a := &Authenticator{cfg: cfg}
	if cfg.CAs != nil {
		a.certs = &CertRules{CAs: cfg.CAs, Clock: cfg.Clock}
	}
	st := a.load()
	if st.keysErr != nil {
		return nil, st.keysErr
	}
	if st.krlErr != nil {
		return nil, st.krlErr
	}
	a.state.Store(st)
	return a, nil
}

// load reads both files and records their stamps.
func (a *Authenticator) load() *authState {
	st := &authState{}
	if a.cfg.KeysFile != "" {
		a.stamps[0] = stampOf(a.cfg.KeysFile)
		st.keys, st.keysErr = LoadKeysFile(a.cfg.KeysFile)
	}
	if a.cfg.RevokedKeys != "" {
		a.stamps[1] = stampOf(a.cfg.RevokedKeys)
		st.krl, st.krlErr = LoadKRL(a.cfg.RevokedKeys)
	}
	return st
}

// Reload re-reads the keys file and the KRL and swaps them in whole. A
// file that cannot be read or parsed is not skipped: its keys fail closed
// (a broken KRL refuses every key, a broken keys file every plain key) until
// a later reload succeeds, and the failure is logged at error level. The
// returned error joins both files' errors.
func (a *Authenticator) Reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reloadLocked()
}

func (a *Authenticator) reloadLocked() error {
	st := a.load()
	a.state.Store(st)
	if st.keysErr != nil {
		a.cfg.Log.WithError(st.keysErr).Error("keys: keys file unusable: every plain key is refused until it is fixed")
	}
	if st.krlErr != nil {
		a.cfg.Log.WithError(st.krlErr).Error("keys: revocation list unusable: every key is refused until it is fixed")
	}
	if st.keysErr == nil && st.krlErr == nil {
		a.cfg.Log.WithFields(logrus.Fields{"keys_file": a.cfg.KeysFile, "revoked_keys": a.cfg.RevokedKeys}).
			Info("keys: reloaded")
	}
	return errors.Join(st.keysErr, st.krlErr)
}

// Watch reloads the keys file and the KRL when one of them changes (is
// written, replaced, appears or vanishes), until ctx ends. It watches the
// directories that hold them (internal/watch, debounced by debounce; zero
// means that package's default) and reloads only when a file's identity,
// size or times changed. It returns once both are watched, or an error if
// a directory cannot be watched; the channel is closed when watching has
// stopped. A nil channel and error mean there is nothing to watch.
func (a *Authenticator) Watch(ctx context.Context, debounce time.Duration) (<-chan struct{}, error) {
	var dirs []string
	for _, f := range []string{a.cfg.KeysFile, a.cfg.RevokedKeys} {
		if f != "" {
			dirs = append(dirs, filepath.Dir(f))
		}
	}
	if len(dirs) == 0 {
		return nil, nil
	}
	done, err := watch.Dirs(ctx, dirs, watch.Options{Debounce: debounce, Log: a.cfg.Log}, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		changed := (a.cfg.KeysFile != "" && stampOf(a.cfg.KeysFile) != a.stamps[0]) ||
			(a.cfg.RevokedKeys != "" && stampOf(a.cfg.RevokedKeys) != a.stamps[1])
		if changed {
			_ = a.reloadLocked()
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return done, nil
}

// Check decides whether key may log in as login from source. On success it
// returns the identity; otherwise a *RefusedError naming the reason.
func (a *Authenticator) Check(key ssh.PublicKey, login string, source net.Addr) (*Identity, error) {
	st := a.state.Load()
	if a.cfg.RevokedKeys != "" && st.krlErr != nil {
		return nil, ErrRevocationUnusable
	}
	var id *Identity
	var err error
	if _, ok := key.(*ssh.Certificate); ok {
		if a.certs == nil {
			return nil, refused(ErrUnknownCA, "no trusted user CA configured")
		}
		id, err = a.certs.Check(key, login, source)
	} else {
		switch {
		case a.cfg.KeysFile == "":
			return nil, refused(ErrNotCertificate, "plain keys are not accepted (no keys_file)")
		case st.keysErr != nil:
			return nil, ErrKeysFileStale
		}
		id, err = st.keys.Check(key, login, source, a.cfg.Clock())
	}
	if err != nil {
		return nil, err
	}
	if err := st.krl.Revoked(key); err != nil {
		return nil, err
	}
	return id, nil
}

// fileStamp identifies a version of a file well enough to notice changes.
type fileStamp struct {
	exists      bool
	dev, ino    uint64
	size        int64
	mtime, ctim int64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	s := fileStamp{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), st.Ino
		s.ctim = st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return s
}
