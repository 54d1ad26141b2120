package sshserver

// openSessions caps the session channels open at once, in total and per
// user id (Limits.MaxSessions, Limits.MaxSessionsPerUser), so that one
// user, or everyone together, cannot start more scripts (each a worker
// process) than the host was sized for. A slot is taken before the channel
// is accepted and given back when the session has ended and its last audit
// line is written. The same caps, counting authenticated connections
// instead (Limits.MaxConnections, Limits.MaxConnectionsPerUser), are kept
// by one made with newOpenConnections.
type openSessions = keyedLimit[string]

func newOpenSessions(max, perUser int) *openSessions {
	return newKeyedLimit[string](max, perUser, "sessions", "for this user")
}

// newOpenConnections caps authenticated connections, in total and per
// user id.
func newOpenConnections(max, perUser int) *openSessions {
	return newKeyedLimit[string](max, perUser, "connections", "for this user")
}
