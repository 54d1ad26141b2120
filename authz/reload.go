package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/internal/watch"
)

// Reload triggers, as they appear in the reason of a policy.reload event.
const (
	TriggerSignal = "sighup"
	TriggerChange = "file change"
)

// DefaultDebounce is the quiet period of Watch (see StoreOptions.Debounce)
// when StoreOptions.Debounce is zero.
const DefaultDebounce = 200 * time.Millisecond

// maxDebounceWaits bounds, in quiet periods, how long a stream of changes
// can put off a read of the directory.
const maxDebounceWaits = 10

// StoreOptions configures a Store. Every field is optional.
type StoreOptions struct {
	// Audit receives one policy.reload event per reload that swapped the
	// set or was refused (nil: none). A reload that Watch started and that
	// found the same content is not audited: nothing changed.
	Audit audit.Sink
	// Log receives a line per reload, and every problem of a refused set
	// at error level (nil discards).
	Log logrus.FieldLogger
	// Debounce is the quiet period of Watch: how long the directory must
	// be quiet before it is read, and how far apart the two reads that
	// must agree are; zero means DefaultDebounce.
	Debounce time.Duration
	// Clock stamps audit events; nil means time.Now.
	Clock func() time.Time
	// OnReload, if set, is called after every reload that read the
	// directory (loaded, unchanged or refused), with the version in force
	// afterwards and the error of a refused set. It is called with the
	// store's reload lock held, so calls come in the order of the reloads;
	// it must not call Reload.
	OnReload func(version string, err error)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apply(trigger, readDir(s.dir), true)
}

// dirRead is one read of the policy directory: the files Load would parse,
// and a key that two reads share only if they read the same thing.
type dirRead struct {
	files map[string][]byte
	errs  []error // files that could not be read
	err   error   // the directory could not be read
	// key is the version a set loaded from files has, when every file was
	// read; otherwise "unreadable: " and the errors.
	key string
}

// readDir reads the policy files of dir.
func readDir(dir string) dirRead {
	var r dirRead
	r.files, r.errs, r.err = readPolicyFiles(dir)
	if r.err != nil || len(r.errs) > 0 {
		msgs := []string{"unreadable"}
		for _, e := range append([]error{r.err}, r.errs...) {
			if e != nil {
				msgs = append(msgs, e.Error())
			}
		}
		r.key = strings.Join(msgs, ": ")
		return r
	}
	names := slices.Sorted(maps.Keys(r.files))
	r.key = versionOf(names, r.files)
	return r
}

// apply loads the set r read and makes it current, or refuses it and keeps
// the current one; auditSame says whether a set found unchanged is
// audited. s.mu must be held, and r read under it, so that a reload never
// puts back what an earlier read saw after a later one took effect.
func (s *Store) apply(trigger string, r dirRead, auditSame bool) (version string, changed bool, err error) {
	if s.opts.OnReload != nil {
		defer func() { s.opts.OnReload(version, err) }()
	}
	old := s.cur.Load()
	err = r.err
	var set *PolicySet
	if err == nil {
		set, err = load(s.dir, r.files, r.errs)
	}
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
	if set.Version() == old.Version() {
		s.log.WithFields(logrus.Fields{"trigger": trigger, "version": old.Version()}).Info("authz: policy reload: unchanged")
		if auditSame {
			s.event(old.Version(), fmt.Sprintf("%s: unchanged", trigger))
		}
		return old.Version(), false, nil
	}
	s.cur.Store(set)
	s.log.WithFields(logrus.Fields{"trigger": trigger, "version": set.Version(), "previous": old.Version(), "policies": set.Len()}).
		Info("authz: policy reloaded")
	s.event(set.Version(), fmt.Sprintf("%s: loaded %d policies, replacing %s", trigger, set.Len(), old.Version()))
	return set.Version(), true, nil
}

// settle is one look at the directory by Watch, which acts on what it
// reads only when the previous look, at least a quiet period earlier, read
// the same: pending is the key of that previous look ("" when none). It
// returns whether Watch must look again.
//
// A file saved in place is read as it is being written; a cut exactly
// between two policies still parses, and a cut-off trailing forbid would
// widen access. Requiring two equal reads a quiet period apart means a
// state of the files that changes again within the quiet period never
// takes effect from the watcher (SIGHUP loads what it finds at once).
func (s *Store) settle(pending *string) (again bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := readDir(s.dir)
	switch {
	case r.key == s.cur.Load().Version():
		*pending = "" // back to (or still at) the set in force: nothing to do
		return false
	case r.key != *pending:
		*pending = r.key
		s.log.WithField("read", r.key).Debug("authz: policy files changed, waiting for them to settle")
		return true
	}
	*pending = ""
	_, _, _ = s.apply(TriggerChange, r, false)
	return false
}

// event writes one policy.reload audit event. A line that cannot be
// written does not hold the reload back: the files on disk are the policy
// of record, a tightening must not wait for the log, and while the log is
// broken no session starts and no operation acts; every decision line
// after the log is back names the version in force.
func (s *Store) event(version, reason string) {
	if s.opts.Audit == nil {
		return
	}
	err := s.opts.Audit.Log(audit.Event{
		Time:          s.opts.Clock(),
		Event:         audit.PolicyReload,
		PolicyVersion: version,
		Reason:        reason,
	})
	if err != nil {
		s.log.WithError(err).WithField("version", version).Error("authz: policy.reload audit line not written")
	}
}

// Watch starts reloading the store whenever the policy directory changes,
// until ctx ends. It returns once the directory is watched, so any change
// made after it returns is seen, or an error if the directory cannot be
// watched at all; the returned channel is closed when watching has
// stopped. It watches the directory, not the files, so it sees files that are
// created, removed, or renamed into place (as editors and configuration
// tools save them). It reads the directory once it has been quiet for
// StoreOptions.Debounce D (or 10·D after the first of a stream of changes),
// and acts on what it read (load and swap, or refuse) only when the next
// read, at least D later, finds the same bytes in the same files;
// otherwise it compares again D later. A read that finds the set in force
// does nothing. So a save in several steps is loaded once, whole, and a
// file written in place (it only grows, so no state of it comes back) is
// never loaded cut off while the pauses between its writes are shorter
// than D, and in practice 2·D, as the first read also waits for D of quiet
// unless changes have streamed for 10·D. A longer pause is
// indistinguishable from a finished save: rename into place to be safe.
// If the directory itself goes away, the last good set stays (the refusal
// is audited once two reads agree) and Watch keeps trying to watch it
// again every second.
func (s *Store) Watch(ctx context.Context) (<-chan struct{}, error) {
	var pending string // the key of a read not acted on yet (settle)
	done, err := watch.Dirs(ctx, []string{s.dir}, watch.Options{
		Debounce: s.opts.Debounce,
		MaxWaits: maxDebounceWaits,
		Log:      s.log,
	}, func() bool { return s.settle(&pending) })
	if err != nil {
		return nil, fmt.Errorf("authz: watch %s: %w", s.dir, err)
	}
	return done, nil
}
