package bench_test

import (
	"testing"

	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// TestMain lets the test binary serve as keyhole's worker process.
func TestMain(m *testing.M) { testenv.Main(m) }
