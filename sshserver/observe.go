package sshserver

import (
	"strings"
	"time"

	"github.com/keyhole-dev/keyhole/keys"
	"github.com/keyhole-dev/keyhole/outcome"
	"github.com/keyhole-dev/keyhole/worker"
)

// Observer is told what the server does, for metrics (package metrics
// implements it; docs/metrics.md). Every label it is given comes from a
// bounded set: reasons and limits are named by this file, never copied
// from what a client sent. Its methods must be safe for concurrent use
// and must not block; Config.Observer nil means none is told anything.
type Observer interface {
	worker.Observer
	// SessionOpened is told of a session channel once it is accepted;
	// SessionEnded of its end, once its session.end line is written and
	// before the client learns its exit status: transport is "script",
	// "sftp" or "" (nothing ran), exit the exit status or -1.
	SessionOpened()
	SessionEnded(transport string, exit int)
	// SessionRefused is told of a session channel refused before it
	// opened (refusalReason's set).
	SessionRefused(reason string)
	// AuthRefused is told of every connection or key refused before
	// authentication completed, including those whose audit lines the
	// refusal limiter folds into a summary (authRefusalLabel's set).
	AuthRefused(reason string)
	// ScriptRan is told how long a script ran in its worker, as the
	// server measured it from taking the worker to its end.
	ScriptRan(d time.Duration)
	// LimitHit is told of a script ended with LIMIT_EXCEEDED, naming the
	// limit (limitOf's set).
	LimitHit(limit string)
}

// workerObserver is the pool's view of o: nil stays nil, so the pool
// makes no calls.
func workerObserver(o Observer) worker.Observer {
	if o == nil {
		return nil
	}
	return o
}

// reasonAuditUnwritable is the refusal reason of a key or a session that
// is refused because the audit log cannot take lines.
const reasonAuditUnwritable = "audit log unwritable"

// authRefusalReasons are the reasons an auth refusal is counted by; any
// other reason counts as "other".
var authRefusalReasons = func() map[string]bool {
	m := map[string]bool{
		reasonAuditUnwritable:                                   true,
		"login grace time exceeded":                             true,
		"too many authentication attempts":                      true,
		"server is short of file descriptors":                   true,
		"too many unauthenticated connections":                  true,
		"too many unauthenticated connections from this source": true,
		"too many connections":                                  true,
		"too many connections for this user":                    true,
	}
	for _, e := range []*keys.RefusedError{
		keys.ErrRevocationUnusable, keys.ErrNotCertificate, keys.ErrHostCertificate, keys.ErrUnknownCA,
		keys.ErrSHA1Signature, keys.ErrBadSignature, keys.ErrNoPrincipals, keys.ErrPrincipalNotAllowed,
		keys.ErrCertExpired, keys.ErrCertNotYetValid, keys.ErrCriticalOption, keys.ErrSourceAddress,
		keys.ErrNoKeyID, keys.ErrKeyNotListed, keys.ErrKeyExpired, keys.ErrKeysFileStale, keys.ErrRevoked,
	} {
		m[e.Reason] = true
	}
	return m
}()

// authRefusalLabel is the label of an auth.refused reason: the reason
// without its detail (after ": ") or its configured cap ("(limit N)"),
// if it is one of authRefusalReasons, or "other".
func authRefusalLabel(reason string) string {
	return boundedReason(reason, authRefusalReasons)
}

// sessionRefusalReasons are the reasons a session refusal is counted by.
var sessionRefusalReasons = map[string]bool{
	reasonAuditUnwritable:             true,
	"no policy loaded":                true,
	"too many sessions":               true,
	"too many sessions for this user": true,
}

func boundedReason(reason string, known map[string]bool) string {
	r, _, _ := strings.Cut(reason, ": ")
	r, _, _ = strings.Cut(r, " (limit ")
	if known[r] {
		return r
	}
	return "other"
}

// limitNames maps a phrase of a LIMIT_EXCEEDED message to the limit's
// label, first match wins.
var limitNames = []struct{ phrase, limit string }{
	{"step limit", "steps"},
	{"wall-clock limit", "wall"},
	{"stack limit", "stack"},
	{"memory limit", "memory"},
	{"output limit", "output"},
	{"read limit", "read"},
	{"write limit", "write"},
	{"operation limit", "operations"},
	{"script larger than", "script_size"},
	{"request line longer than", "script_size"},
	{"script not received", "script_wait"},
	{"timed out after", "exec_timeout"},
}

// limitOf names the limit a LIMIT_EXCEEDED error hit, or "other" (a JSON
// value, a glob, a line or a disk that is too large).
func limitOf(e *outcome.Error) string {
	for _, n := range limitNames {
		if strings.Contains(e.Message, n.phrase) {
			return n.limit
		}
	}
	return "other"
}

func (s *Server) observeAuthRefused(reason string) {
	if o := s.cfg.Observer; o != nil {
		o.AuthRefused(authRefusalLabel(reason))
	}
}

func (s *Server) observeSessionRefused(reason string) {
	if o := s.cfg.Observer; o != nil {
		o.SessionRefused(boundedReason(reason, sessionRefusalReasons))
	}
}

// observeOpened is told that the session's channel is accepted.
func (ss *session) observeOpened() {
	if o := ss.s.cfg.Observer; o != nil {
		o.SessionOpened()
	}
}

// observeEnded is told that the session has ended with exit (-1: no
// script ran).
func (ss *session) observeEnded(exit int) {
	o := ss.s.cfg.Observer
	if o == nil {
		return
	}
	ss.mu.Lock()
	transport := ss.base.Transport
	ss.mu.Unlock()
	o.SessionEnded(transport, exit)
}

// observeFinish is told how a script ended.
func (ss *session) observeFinish(err *outcome.Error) {
	if o := ss.s.cfg.Observer; o != nil && err != nil && err.Kind == outcome.KindLimitExceeded {
		o.LimitHit(limitOf(err))
	}
}

// observeRun returns the function that tells the observer how long the
// script has run; it does nothing without one.
func (ss *session) observeRun() func() {
	o := ss.s.cfg.Observer
	if o == nil {
		return func() {}
	}
	start := time.Now()
	return func() { o.ScriptRan(time.Since(start)) }
}
