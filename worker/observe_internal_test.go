package worker

import "testing"

type decisionCounts map[[2]string]int

func (decisionCounts) WorkerStarted(bool) {}
func (decisionCounts) IdleWorkers(int)    {}
func (decisionCounts) ParkedWorkers(int)  {}
func (d decisionCounts) Decision(action string, allow bool) {
	o := "deny"
	if allow {
		o = "allow"
	}
	d[[2]string{action, o}]++
}

// TestObserveDecisionBoundsActions: the worker names the action, so a
// name outside the schema is counted as "other"; nil observes nothing.
func TestObserveDecisionBoundsActions(t *testing.T) {
	t.Parallel()
	d := decisionCounts{}
	for _, a := range []string{"read", "exec", "restart", "Read", "rm -rf /", "", "read\n"} {
		observeDecision(d, a, a == "read")
	}
	observeDecision(nil, "read", true)
	want := decisionCounts{{"read", "allow"}: 1, {"exec", "deny"}: 1, {"restart", "deny"}: 1, {"other", "deny"}: 4}
	if len(d) != len(want) {
		t.Fatalf("counts %v, want %v", d, want)
	}
	for k, n := range want {
		if d[k] != n {
			t.Errorf("%v: %d, want %d (all: %v)", k, d[k], n, d)
		}
	}
}
