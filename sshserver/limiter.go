package sshserver

import (
	"strconv"
	"sync"
)

// keyedLimit caps how many of something are held at once, in total and per
// key (a user id, a source address): the one limiter behind the session,
// connection and startup caps. Zero for either cap means none of that
// kind. A slot is taken by acquire and given back by the release function
// it returns. Safe for concurrent use; mu guards every field but the
// immutable ones.
type keyedLimit[K comparable] struct {
	max, perKey int
	// What the refusal reasons say: "too many <noun>" and, per key,
	// "too many <noun> <ofKey>".
	noun, ofKey string

	mu    sync.Mutex
	total int
	byKey map[K]int
}

func newKeyedLimit[K comparable](max, perKey int, noun, ofKey string) *keyedLimit[K] {
	return &keyedLimit[K]{max: max, perKey: perKey, noun: noun, ofKey: ofKey, byKey: map[K]int{}}
}

// acquire takes a slot for key. It returns a release function (safe to
// call more than once) or, when a cap is reached, the reason, for the
// audit line and the client.
func (l *keyedLimit[K]) acquire(key K) (release func(), reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perKey > 0 && l.byKey[key] >= l.perKey {
		return nil, "too many " + l.noun + " " + l.ofKey + " (limit " + strconv.Itoa(l.perKey) + ")"
	}
	if l.max > 0 && l.total >= l.max {
		return nil, "too many " + l.noun + " (limit " + strconv.Itoa(l.max) + ")"
	}
	l.total++
	l.byKey[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.byKey[key]--; l.byKey[key] <= 0 {
				delete(l.byKey, key)
			}
		})
	}, ""
}

// counts returns the total and key's count.
func (l *keyedLimit[K]) counts(key K) (total, ofKey int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.byKey[key]
}
