package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"
)

// Defaults of Options.
const (
	DefaultDebounce = 200 * time.Millisecond
	DefaultMaxWaits = 10
	DefaultRetry    = time.Second
)

// Options configures Dirs. Every field is optional.
type Options struct {
	// Debounce is how long the directories must be quiet before Fire is
	// called, and how long Dirs waits before calling it again when it asks
	// to be.
	Debounce time.Duration
	// MaxWaits bounds, in quiet periods, how long a stream of events can
	// put off a call.
	MaxWaits int
	// Retry is how often a directory that went away is looked for.
	Retry time.Duration
	// Log receives a line when a directory goes away, comes back, or the
	// event queue overflows (nil discards).
	Log logrus.FieldLogger
}

// Dirs watches dirs until ctx ends and calls fire after each change, once
// the directories have been quiet (see the package doc). When fire returns
// true it is called again one quiet period later, even without a new
// event: a caller that wants two looks at a settling file asks this way.
//
// Dirs returns once every directory is watched, so a change made after it
// returns is seen, or an error if one cannot be watched at all. The
// returned channel is closed when watching has stopped.
func Dirs(ctx context.Context, dirs []string, opts Options, fire func() (again bool)) (<-chan struct{}, error) {
	if len(dirs) == 0 {
		return nil, errors.New("watch: no directory to watch")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.MaxWaits <= 0 {
		opts.MaxWaits = DefaultMaxWaits
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	if opts.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Log = l
	}
	var clean []string
	for _, d := range dirs {
		if c := filepath.Clean(d); !slices.Contains(clean, c) {
			clean = append(clean, c)
		}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	for _, d := range clean {
		if err := w.Add(d); err != nil {
			w.Close()
			return nil, fmt.Errorf("watch: %s: %w", d, err)
		}
	}
	done := make(chan struct{})
	l := &loop{w: w, dirs: clean, opts: opts, fire: fire, lost: map[string]bool{}}
	go func() {
		defer close(done)
		defer w.Close()
		l.run(ctx)
	}()
	return done, nil
}

// loop is the state of one Dirs; it belongs to its goroutine.
type loop struct {
	w    *fsnotify.Watcher
	dirs []string
	opts Options
	fire func() bool
	lost map[string]bool // directories that went away and are not watched

	timer *time.Timer
	first time.Time // first event of the pending burst; zero when none
}

func (l *loop) run(ctx context.Context) {
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	defer l.timer.Stop()
	retry := time.NewTicker(l.opts.Retry)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-l.w.Events:
			if !ok {
				return
			}
			if name := filepath.Clean(ev.Name); slices.Contains(l.dirs, name) && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				l.lost[name] = true
				l.opts.Log.WithField("dir", name).Warn("watch: directory removed or renamed; watching for its return")
			}
			l.changed()
		case err, ok := <-l.w.Errors:
			if !ok {
				return
			}
			// An overflowed queue loses events: count it as a change.
			l.opts.Log.WithError(err).Warn("watch: event queue")
			l.changed()
		case <-l.timer.C:
			l.first = time.Time{}
			if l.fire() {
				l.timer.Reset(l.opts.Debounce)
			}
		case <-retry.C:
			for d := range l.lost {
				_ = l.w.Remove(d) // a renamed directory's old watch, if any
				if err := l.w.Add(d); err == nil {
					delete(l.lost, d)
					l.opts.Log.WithField("dir", d).Info("watch: watching the directory again")
					l.changed()
				}
			}
		}
	}
}

// changed schedules a call of fire for the burst an event belongs to.
func (l *loop) changed() {
	now := time.Now()
	if l.first.IsZero() {
		l.first = now
	}
	wait := l.opts.Debounce
	if left := l.first.Add(time.Duration(l.opts.MaxWaits) * l.opts.Debounce).Sub(now); left < wait {
		wait = max(left, 0)
	}
	l.timer.Reset(wait)
}
