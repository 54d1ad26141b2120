package sshserver

import (
	"net/netip"
	"sync"
)

// Defaults of the unauthenticated-connection caps.
const (
	DefaultMaxStartups          = 100
	DefaultMaxStartupsPerSource = 10
)

// startups caps the connections that have not authenticated yet, in total
// and per source address, as OpenSSH's MaxStartups and
// PerSourceMaxStartups do. The per-source cap keeps one noisy source from
// taking every slot, so others can still log in. A slot is held from
// accept until the connection authenticates, closes or runs out of login
// grace time. Safe for concurrent use; mu guards every field.
type startups struct {
	max, perSource int

	mu       sync.Mutex
	total    int
	bySource map[netip.Addr]int
}

func newStartups(max, perSource int) *startups {
	if max <= 0 {
		max = DefaultMaxStartups
	}
	if perSource <= 0 {
		perSource = min(DefaultMaxStartupsPerSource, max)
	}
	return &startups{max: max, perSource: perSource, bySource: map[netip.Addr]int{}}
}

// acquire takes a slot for a connection from src. It returns a release
// function (safe to call more than once) or, when a cap is reached, the
// reason for the audit line.
func (s *startups) acquire(src netip.Addr) (release func(), reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bySource[src] >= s.perSource {
		return nil, "too many unauthenticated connections from this source"
	}
	if s.total >= s.max {
		return nil, "too many unauthenticated connections"
	}
	s.total++
	s.bySource[src]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.bySource[src]--; s.bySource[src] <= 0 {
				delete(s.bySource, src)
			}
		})
	}, ""
}

// counts returns the total and src's count, for tests.
func (s *startups) counts(src netip.Addr) (total, fromSrc int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.bySource[src]
}
