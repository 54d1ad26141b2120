package sshserver

// IdleWorkerVersions returns the policy version each idle pooled worker
// preloaded ("" for none), for the tests of the pool.
func (s *Server) IdleWorkerVersions() []string { return s.pool.IdleVersions() }

// EffectiveLimits returns the limits the server runs with, defaults
// filled in.
func (s *Server) EffectiveLimits() Limits { return s.cfg.Limits }

// ParkedWorkers returns how many workers are parked for reuse.
func (s *Server) ParkedWorkers() int { return s.pool.Parked() }
