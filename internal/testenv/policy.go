package testenv

import (
	"sync/atomic"

	"github.com/keyhole-dev/keyhole/authz"
)

// Swap is a PolicySource whose set a test replaces, as a reload does.
type Swap struct {
	p atomic.Pointer[authz.PolicySet]
}

// Current returns the set last stored.
func (s *Swap) Current() *authz.PolicySet { return s.p.Load() }

// Set makes ps the set new sessions get.
func (s *Swap) Set(ps *authz.PolicySet) { s.p.Store(ps) }
