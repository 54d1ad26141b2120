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
// line is written. Safe for concurrent use; mu guards every field.
type openSessions struct {
	max, perUser int // 0: no cap

	mu     sync.Mutex
	total  int
	byUser map[string]int
}

func newOpenSessions(max, perUser int) *openSessions {
	return &openSessions{max: max, perUser: perUser, byUser: map[string]int{}}
}

// acquire takes a slot for a session of user. It returns a release
// function (safe to call more than once) or, when a cap is reached, the
// reason, for the audit line and the client.
func (o *openSessions) acquire(user string) (release func(), reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.perUser > 0 && o.byUser[user] >= o.perUser {
		return nil, "too many sessions for this user (limit " + strconv.Itoa(o.perUser) + ")"
	}
	if o.max > 0 && o.total >= o.max {
		return nil, "too many sessions (limit " + strconv.Itoa(o.max) + ")"
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
