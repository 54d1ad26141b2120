package sshserver

// IdleWorkerVersions returns the policy version each idle pooled worker
// preloaded ("" for none), for the tests of the pool.
func (s *Server) IdleWorkerVersions() []string {
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	out := make([]string, len(s.pool.idle))
	for i, w := range s.pool.idle {
		out[i] = w.policyVersion
	}
	return out
}

// EffectiveLimits returns the limits the server runs with, defaults
// filled in.
func (s *Server) EffectiveLimits() Limits { return s.cfg.Limits }
