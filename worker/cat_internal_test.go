package worker

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCatHalt: a stream stops once its deadline has passed or the run
// halts it, and runs on with no deadline set.
func TestCatHalt(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline time.Time
		halt     bool
		wantErr  error
	}{
		{name: "no-deadline", deadline: catDeadline(0)},
		{name: "deadline-ahead", deadline: catDeadline(time.Hour)},
		{name: "deadline-passed", deadline: time.Now().Add(-time.Second), wantErr: errCatHalted},
		{name: "halted", deadline: catDeadline(time.Hour), halt: true, wantErr: errCatHalted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &catter{deadline: tc.deadline, halt: &atomic.Bool{}}
			c.halt.Store(tc.halt)
			got, err := io.ReadAll(&haltReader{r: strings.NewReader("data"), c: c})
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && string(got) != "data" || tc.wantErr != nil && len(got) != 0 {
				t.Errorf("read %q, %v; want error %v", got, err, tc.wantErr)
			}
		})
	}
}
