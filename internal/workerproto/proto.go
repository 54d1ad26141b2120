package workerproto

import (
	"encoding/json"
	"github.com/keyhole-dev/keyhole/outcome"
	"time"

	"github.com/keyhole-dev/keyhole/authz"
)

// Type is the type of a frame.
type Type byte

// Message types.
const (
	TypeStart  Type = 1 // server → worker: *Start, JSON
	TypeAudit  Type = 2 // worker → server: audit.Event, JSON; a decision not in the ring (doc.go)
	TypePrint  Type = 3 // worker → server: raw bytes of one print call
	TypeResult Type = 4 // worker → server: *Result, JSON
	// TypeAuditSync is an Audit message whose operation acts on the host
	// once the line is written (hostops.Acts): the worker waits for the
	// server's Confirm before the operation acts.
	TypeAuditSync Type = 6 // worker → server: audit.Event, JSON
	// TypeConfirm tells the worker that the line of its last AuditSync
	// message is in the audit log. Its payload is empty.
	TypeConfirm Type = 7 // server → worker: empty
	// TypeSync asks the server to take every decision the worker has put
	// in its ring and answer with a Confirm once their lines are in the
	// audit log. Its payload is empty.
	TypeSync Type = 8 // worker → server: empty

	typeLast = TypeCatDone // cat.go
)

func (t Type) String() string {
	switch t {
	case TypeStart:
		return "start"
	case TypeAudit:
		return "audit"
	case TypePrint:
		return "print"
	case TypeResult:
		return "result"
	case TypePreload:
		return "preload"
	case TypeAuditSync:
		return "audit-sync"
	case TypeConfirm:
		return "confirm"
	case TypeSync:
		return "sync"
	case TypeCat:
		return "cat"
	case TypeCatDone:
		return "cat-done"
	}
	return "unknown"
}

// Start is everything a worker needs to run one script. The server keeps the
// policy of record; Policies is a copy of its source files, which the
// worker validates again and must find at PolicyVersion. Policies is
// omitted when the worker preloaded that version (Preload).
type Start struct {
	Filename  string          `json:"filename"`
	Script    string          `json:"script"`
	Args      json.RawMessage `json:"args,omitempty"` // a JSON object, or absent
	Principal authz.Principal `json:"principal"`
	// Context is the request context; Now is the server's clock when the
	// session started, and the worker advances it by its own monotonic
	// clock.
	Context       authz.Context     `json:"context"`
	Policies      map[string][]byte `json:"policies"`
	PolicyVersion string            `json:"policy_version"`
	Limits        Limits            `json:"limits"`
	// ServiceManager is the command svc.* runs (hostops.Host's field of
	// that name); empty means hostops.DefaultServiceManager().
	ServiceManager []string `json:"service_manager,omitempty"`
	// DryRun runs the script as a dry run (hostops.Host's field of that
	// name): every operation is decided and audited, reads read, and
	// nothing that changes the host is done.
	DryRun bool `json:"dry_run,omitempty"`
}

// Limits are the limits of one script. Zero means the runtime's default,
// except MaxMemory, MaxStack, MaxRead, MaxWrite and MaxOperations, where
// zero means no limit of that kind.
type Limits struct {
	MaxSteps  uint64        `json:"max_steps"`
	MaxWall   time.Duration `json:"max_wall"`
	MaxOutput int64         `json:"max_output"`
	MaxMemory int64         `json:"max_memory"` // bytes of the worker's heap
	MaxStack  int64         `json:"max_stack"`  // bytes of one goroutine's stack
	// MaxRead and MaxWrite cap the bytes the whole script reads from and
	// writes to the host (hostops.Counters); zero means no cap.
	MaxRead  int64 `json:"max_read"`
	MaxWrite int64 `json:"max_write"`
	// MaxOperations caps the decisions (audit lines) of the script's
	// operations (hostops.Counters); zero means no cap.
	MaxOperations int64 `json:"max_operations"`
	// MaxExecOutput is hostops.Host's field of that name: bytes of stdout
	// and of stderr each kept from one program; zero means its default.
	MaxExecOutput int64 `json:"max_exec_output"`
}

// Error is the error that ended a script: outcome's, as it crosses the
// pipe in JSON.
type Error = outcome.Error

// Result is the last message of a worker.
type Result struct {
	Exit  int             `json:"exit"`
	Error *Error          `json:"error"`
	Value json.RawMessage `json:"value,omitempty"` // what the script passed to result(), JSON
	Steps uint64          `json:"steps"`
	// Duration is how long the script ran inside the worker.
	Duration     time.Duration `json:"duration"`
	BytesRead    int64         `json:"bytes_read"`
	BytesWritten int64         `json:"bytes_written"`
}
