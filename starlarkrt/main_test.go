package starlarkrt_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: Run starts one
// per script to stop it at its wall-clock limit or cancellation.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
