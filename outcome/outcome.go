package outcome

import "fmt"

// Error kinds, as scripts and clients see them.
const (
	// Host operation failures, which a script can catch.
	KindAccessDenied    = "ACCESS_DENIED"
	KindNotFound        = "NOT_FOUND"
	KindInvalidArgument = "INVALID_ARGUMENT"
	KindIOError         = "IO_ERROR"
	// A limit of the script; never caught.
	KindLimitExceeded = "LIMIT_EXCEEDED"
	// The script's own failures, and keyhole's.
	KindScriptError = "SCRIPT_ERROR"
	KindSyntaxError = "SYNTAX_ERROR"
	KindInternal    = "INTERNAL"
)

// Exit statuses of a script (DESIGN.md, "Wire protocols").
const (
	ExitOK            = 0
	ExitScriptError   = 1
	ExitSyntaxError   = 2
	ExitAccessDenied  = 13
	ExitLimitExceeded = 124
	ExitInternal      = 125
)

// Error is the error of a host operation, and the error that ended a
// script: the same value travels from hostops through the runtime and the
// worker protocol to the client. Action, Resource and Policies are set
// when an operation failed.
type Error struct {
	Kind     string   `json:"kind"`
	Message  string   `json:"message"`
	Action   string   `json:"action"`
	Resource string   `json:"resource"`
	Policies []string `json:"policies"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Kind, e.Message) }

// ExitFor maps an error kind to the exit status of a script that it ends.
func ExitFor(kind string) int {
	switch kind {
	case KindAccessDenied:
		return ExitAccessDenied
	case KindLimitExceeded:
		return ExitLimitExceeded
	case KindSyntaxError:
		return ExitSyntaxError
	case KindInternal:
		return ExitInternal
	default:
		return ExitScriptError
	}
}

// ValidEnd reports whether exit and err are an end a script can have: a
// known exit status, with an error of a kind set exactly when it is not
// ExitOK.
func ValidEnd(exit int, err *Error) bool {
	switch exit {
	case ExitOK:
		return err == nil
	case ExitScriptError, ExitSyntaxError, ExitAccessDenied, ExitLimitExceeded, ExitInternal:
		return err != nil && err.Kind != ""
	}
	return false
}
