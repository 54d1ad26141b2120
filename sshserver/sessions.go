package sshserver

import (
	"strconv"
	"sync"
)

// openSessions caps the session channels open at once, in total and per
// user id (Limits.MaxSessions, Limits.MaxSessionsPerUser), so that one
// user, or everyone together, cannot start more scripts (each a worker
// process) than the host was sized for. A slot is taken before the channel
// is accepted and given back when the session has ended and its last audit
// line is written. The same caps, counting authenticated connections
// instead (Limits.MaxConnections, Limits.MaxConnectionsPerUser), are kept
// by one made with newOpenConnections. Safe for concurrent use; mu guards
// every field but the immutable ones.
type openSessions struct {
	max, perUser int    // 0: no cap
	noun         string // what is counted, as the reasons name it

	mu     sync.Mutex
	total  int
	byUser map[string]int
}

func newOpenSessions(max, perUser int) *openSessions {
	return &openSessions{max: max, perUser: perUser, noun: "sessions", byUser: map[string]int{}}
}

// newOpenConnections caps authenticated connections, in total and per
// user id.
func newOpenConnections(max, perUser int) *openSessions {
	return &openSessions{max: max, perUser: perUser, noun: "connections", byUser: map[string]int{}}
}

// acquire takes a slot for a session of user. It returns a release
// function (safe to call more than once) or, when a cap is reached, the
// reason, for the audit line and the client.
func (o *openSessions) acquire(user string) (release func(), reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.perUser > 0 && o.byUser[user] >= o.perUser {
		return nil, "too many " + o.noun + " for this user (limit " + strconv.Itoa(o.perUser) + ")"
	}
	if o.max > 0 && o.total >= o.max {
		return nil, "too many " + o.noun + " (limit " + strconv.Itoa(o.max) + ")"
	}
	o.total++
	o.byUser[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.total--
			if o.byUser[user]--; o.byUser[user] <= 0 {
				delete(o.byUser, user)
			}
		})
	}, ""
}

// counts returns the total and user's count.
func (o *openSessions) counts(user string) (total, ofUser int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.total, o.byUser[user]
}
