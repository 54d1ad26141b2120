package authz

import (
	"net/netip"
	"strings"
	"time"

	"github.com/keyhole-dev/keyhole/keys"
)

// Resource kinds, the Cedar entity types a request can name.
const (
	KindFile    = "File"
	KindDir     = "Dir"
	KindCommand = "Command"
	KindService = "Service"
)

// Principal is the verified identity a session acts as: the identity
// package keys derives from the key that authenticated, passed through
// unchanged, so no layer between the handshake and the decision copies or
// rebuilds it.
type Principal = keys.Identity

// Resource is the object an action touches. For File and Dir, Path is the
// canonical absolute path of the pinned object; for Command, the real path of
// the program; for Service, Path is the service name.
type Resource struct {
	Kind   string
	Path   string
	Exists bool   // File only
	Size   *int64 // File only, optional
	Mode   *int64 // File only, optional
	UID    *int64 // File only, optional
	Nlink  *int64 // File only, optional
}

// Context is the request context policies see as context.*.
type Context struct {
	SourceIP     netip.Addr
	Now          time.Time
	SessionID    string
	ScriptSHA256 string
	Transport    string   // "script" or "sftp"
	Argv         string   // exec only
	Args         []string // exec only
}

// Request is one authorization question.
type Request struct {
	Principal Principal
	Action    string // an action name of the schema, e.g. "read"
	Resource  Resource
	Context   Context
}

// Decision is the answer to a Request.
type Decision struct {
	Allow bool
	// Policies are the @id values of the policies that decided: the
	// permits that matched on allow; on deny, the forbids that matched and
	// every policy whose evaluation erred. Empty on a default deny.
	Policies []string
	// Errors are evaluation errors, each naming the policy that erred
	// (none for a malformed request). Any error makes the decision deny.
	Errors []PolicyError
	// Version is the content hash of the policy set that decided.
	Version string
}

// PolicyError is an error met while deciding: a policy whose evaluation
// erred, or (Policy empty) a request that cannot be decided.
type PolicyError struct {
	Policy  string // the @id of the policy that erred; "" for the request
	Message string
}

// Error returns "policy-id: message", or the message alone when no
// policy erred.
func (e PolicyError) Error() string {
	if e.Policy == "" {
		return e.Message
	}
	return e.Policy + ": " + e.Message
}

// ErrorText returns the decision's errors joined by "; ", or "" when it
// has none: the reason an audit line gives.
func (d Decision) ErrorText() string {
	var b strings.Builder
	for i, e := range d.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}
