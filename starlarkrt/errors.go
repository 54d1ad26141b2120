package starlarkrt

import (
	"errors"
	"fmt"

	"go.starlark.net/starlark"

	"github.com/keyhole-dev/keyhole/hostops"
	"github.com/keyhole-dev/keyhole/outcome"
)

// Exit statuses of a script (DESIGN.md, "Wire protocols"; package
// outcome).
const (
	ExitOK            = outcome.ExitOK
	ExitScriptError   = outcome.ExitScriptError
	ExitSyntaxError   = outcome.ExitSyntaxError
	ExitAccessDenied  = outcome.ExitAccessDenied
	ExitLimitExceeded = outcome.ExitLimitExceeded
	ExitInternal      = outcome.ExitInternal
)

// Error kinds beyond those of hostops: the script's own failures.
const (
	KindScriptError = outcome.KindScriptError
	KindSyntaxError = outcome.KindSyntaxError
	KindInternal    = outcome.KindInternal
)

// Error is the error that ended a script: outcome's, the same type a host
// operation fails with.
type Error = outcome.Error

// exitFor maps an error kind to the script's exit status.
func exitFor(kind string) int { return outcome.ExitFor(kind) }

// fromHostError converts a host operation error into the script's Error,
// or returns nil when err did not come from hostops.
func fromHostError(err error) *Error {
	var he *hostops.Error
	if !errors.As(err, &he) {
		return nil
	}
	e := *he // a copy: the script's end must not share the operation's error
	return &e
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
