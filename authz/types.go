package authz

import (
	"net/netip"
	"time"
)

// Resource kinds, the Cedar entity types a request can name.
const (
	KindFile    = "File"
	KindDir     = "Dir"
	KindCommand = "Command"
	KindService = "Service"
)

// Principal is the verified identity a session acts as.
type Principal struct {
	UserID      string   // certificate key id or keys_file comment
	Role        string   // the SSH login name, one of Principals
	Principals  []string // every principal the certificate or key line lists
	Serial      uint64   // certificate serial, 0 for plain keys
	Fingerprint string   // SHA256 fingerprint of the user key, as OpenSSH prints it
	Auth        string   // "certificate" or "key"
}

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
	// Errors are evaluation errors, "policy-id: message". Any error makes
	// the decision deny.
	Errors []string
	// Version is the content hash of the policy set that decided.
	Version string
}
