package worker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: a served script
// has one reading Confirm messages and one stopping it at its limits.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
