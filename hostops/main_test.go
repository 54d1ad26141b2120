package hostops_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: Exec and Service
// start one per output pipe and must end them whatever the program does.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
