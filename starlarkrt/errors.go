package starlarkrt

import (
	"errors"
	"fmt"

	"go.starlark.net/starlark"

	"github.com/keyhole-dev/keyhole/hostops"
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

// Error kinds beyond those of hostops: the script's own failures.
const (
	KindScriptError = "SCRIPT_ERROR"
	KindSyntaxError = "SYNTAX_ERROR"
	KindInternal    = "INTERNAL"
)

// Error is the error that ended a script.
type Error struct {
	Kind     string
	Message  string
	Action   string
	Resource string
	Policies []string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Kind, e.Message) }

// exitFor maps an error kind to the script's exit status.
func exitFor(kind string) int {
	switch kind {
	case hostops.KindAccessDenied:
		return ExitAccessDenied
	case hostops.KindLimitExceeded:
		return ExitLimitExceeded
	case KindSyntaxError:
		return ExitSyntaxError
	case KindInternal:
		return ExitInternal
	default:
		return ExitScriptError
	}
}

// fromHostError converts a host operation error into the script's Error,
// or returns nil when err did not come from hostops.
func fromHostError(err error) *Error {
	var he *hostops.Error
	if !errors.As(err, &he) {
		return nil
	}
	return &Error{Kind: he.Kind, Message: he.Message, Action: he.Action, Resource: he.Resource, Policies: he.Policies}
}

// evalMessage is the message of a Starlark evaluation error, with the
// position of the innermost script frame.
func evalMessage(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		for i := len(ee.CallStack) - 1; i >= 0; i-- {
			fr := ee.CallStack[i]
			if fr.Pos.IsValid() && fr.Pos.Line > 0 {
				return fmt.Sprintf("%s: %s", fr.Pos, ee.Msg)
			}
		}
		return ee.Msg
	}
	return err.Error()
}
