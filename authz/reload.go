package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"

	"github.com/keyhole-dev/keyhole/audit"
)

// Reload triggers, as they appear in the reason of a policy.reload event.
const (
	TriggerSignal = "sighup"
	TriggerChange = "file change"
)

// DefaultDebounce is how long Watch waits after the last change in the
// policy directory before it reloads, when StoreOptions.Debounce is zero.
const DefaultDebounce = 200 * time.Millisecond

// maxDebounceWait bounds how long a stream of changes can put off a reload.
const maxDebounceWait = 10 * DefaultDebounce

// StoreOptions configures a Store. Every field is optional.
type StoreOptions struct {
	// Audit receives one policy.reload event per reload that swapped the
	// set or was refused (nil: none). A reload that Watch started and that
	// found the same content is not audited: nothing changed.
	Audit audit.Sink
	// Log receives a line per reload, and every problem of a refused set
	// at error level (nil discards).
	Log logrus.FieldLogger
	// Debounce is how long Watch waits for a directory to settle before
	// reloading; zero means DefaultDebounce.
	Debounce time.Duration
	// Clock stamps audit events; nil means time.Now.
	Clock func() time.Time
}

// Store holds the policy set a server decides with and replaces it when
// the directory changes. Current is a single atomic load, safe for any
// number of goroutines; a caller that needs one consistent view (a session)
// takes Current once and keeps that *PolicySet. Reload reads, parses and
// validates the whole directory and only then swaps the pointer, so a
// caller sees the old set or the new one, never a mix, and a set that fails
// to load never takes effect: the last good one stays.
//
// Reloads are serialized by mu, so a slow load can never overwrite the
// result of a later one. Store's fields are read-only after NewStore, apart
// from cur (atomic) and mu.
type Store struct {
	dir  string
	opts StoreOptions
	log  logrus.FieldLogger
	cur  atomic.Pointer[PolicySet]
	mu   sync.Mutex // held for the whole of a reload
}

// NewStore returns a Store for the policy directory dir whose current set
// is initial, a set loaded from dir by the caller (so that a server can
// refuse to start on a bad directory before it creates anything). A nil
// initial set is an error: a Store always holds a good set.
func NewStore(dir string, initial *PolicySet, opts StoreOptions) (*Store, error) {
	if initial == nil {
		return nil, errors.New("authz: new store: no initial policy set")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	s := &Store{dir: dir, opts: opts, log: opts.Log}
	if s.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		s.log = l
	}
	s.cur.Store(initial)
	return s, nil
}

// Dir returns the policy directory of the store.
func (s *Store) Dir() string { return s.dir }

// Current returns the set in force. It never returns nil.
func (s *Store) Current() *PolicySet { return s.cur.Load() }

// Reload loads the directory again and, if every file is valid, makes the
// new set current. It returns the version in force afterwards and whether it
// changed. On error the current set is kept, the error (one "file:line: …"
// per problem) is logged and audited, and returned. trigger names what asked
// for the reload, for the audit line ("sighup", "file change", …).
func (s *Store) Reload(trigger string) (version string, changed bool, err error) {
	return s.reload(trigger, true)
}

// reload is Reload; auditSame says whether a reload that found the set
// unchanged is audited.
func (s *Store) reload(trigger string, auditSame bool) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	ps, err := Load(s.dir)
	if err != nil {
		msgs := strings.Split(err.Error(), "\n")
		for _, m := range msgs {
			s.log.WithField("trigger", trigger).Error(m)
		}
		s.log.WithFields(logrus.Fields{"trigger": trigger, "kept": old.Version()}).
			Errorf("authz: policy reload refused (%d problems), keeping the last good set", len(msgs))
		s.event(old.Version(), fmt.Sprintf("%s: refused, kept the last good set: %s", trigger, strings.Join(msgs, "; ")))
		return old.Version(), false, err
	}
	if ps.Version() == old.Version() {
		s.log.WithFields(logrus.Fields{"trigger": trigger, "version": old.Version()}).Info("authz: policy reload: unchanged")
		if auditSame {
			s.event(old.Version(), fmt.Sprintf("%s: unchanged", trigger))
		}
		return old.Version(), false, nil
	}
	s.cur.Store(ps)
	s.log.WithFields(logrus.Fields{"trigger": trigger, "version": ps.Version(), "previous": old.Version(), "policies": ps.Len()}).
		Info("authz: policy reloaded")
	s.event(ps.Version(), fmt.Sprintf("%s: loaded %d policies, replacing %s", trigger, ps.Len(), old.Version()))
	return ps.Version(), true, nil
}

// event writes one policy.reload audit event.
func (s *Store) event(version, reason string) {
	if s.opts.Audit == nil {
		return
	}
	s.opts.Audit.Log(audit.Event{
		Time:          s.opts.Clock(),
		Event:         audit.PolicyReload,
		PolicyVersion: version,
		Reason:        reason,
	})
}

// Watch starts reloading the store whenever the policy directory changes,
// until ctx ends. It returns once the directory is watched, so any change
// made after it returns is seen, or an error if the directory cannot be
// watched at all; the returned channel is closed when watching has
// stopped. It watches the directory, not the files, so it sees files that are
// created, removed, or renamed into place (as editors and configuration
// tools save them), and it waits until the directory has been quiet for
// StoreOptions.Debounce (at most ten times that after the first change) so
// that a save in several steps is loaded once, whole. If the directory
// itself goes away, the last good set stays and Watch keeps trying to
// watch it again every second.
func (s *Store) Watch(ctx context.Context) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("authz: watch %s: %w", s.dir, err)
	}
	if err := w.Add(s.dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("authz: watch %s: %w", s.dir, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Close()
		s.watch(ctx, w)
	}()
	return done, nil
}

// watch is the loop of Watch; it owns w.
func (s *Store) watch(ctx context.Context, w *fsnotify.Watcher) {
	watching := true
	clean := filepath.Clean(s.dir)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time // of the pending burst; zero when none
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == clean && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				watching = false
				s.log.WithField("dir", s.dir).Warn("authz: policy directory removed or renamed; keeping the last good set")
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			wait := s.opts.Debounce
			if left := first.Add(maxDebounceWait).Sub(now); left < wait {
				wait = max(left, 0)
			}
			timer.Reset(wait)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// An overflowed queue loses events: reload to be sure.
			s.log.WithError(err).Warn("authz: policy directory watch")
			first = time.Now()
			timer.Reset(s.opts.Debounce)
		case <-timer.C:
			first = time.Time{}
			_, _, _ = s.reload(TriggerChange, false)
		case <-retry.C:
			if watching {
				continue
			}
			_ = w.Remove(s.dir) // a renamed directory's old watch, if any
			if err := w.Add(s.dir); err == nil {
				watching = true
				s.log.WithField("dir", s.dir).Info("authz: watching the policy directory again")
				first = time.Now()
				timer.Reset(s.opts.Debounce)
			}
		}
	}
}
