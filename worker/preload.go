package worker

// A pooled worker's idle time: the Preload message (internal/workerproto)
// lets it load and validate the policy set of record, and warm the code
// paths every script takes, before a session hands it a script. What a
// script then waits for is its own work.

import (
	"context"
	"fmt"
	"io"

	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/starlarkrt"
)

// preload loads a Preload message's policy set and warms the runtime. The
// set must have the version the message names: the version is the content
// hash of the files, computed here, so a Start naming it gets exactly
// these files' policies.
func preload(p []byte) (*authz.PolicySet, error) {
	var pl workerproto.Preload
	if err := workerproto.Decode(workerproto.TypePreload, p, &pl); err != nil {
		return nil, err
	}
	set, err := authz.LoadFiles(pl.Policies)
	if err != nil {
		return nil, fmt.Errorf("preloaded policy does not load: %w", err)
	}
	if set.Version() != pl.PolicyVersion {
		return nil, fmt.Errorf("preloaded policy is %s, want %s", set.Version(), pl.PolicyVersion)
	}
	warmUp()
	return set, nil
}

// warmStart has the shape of a Start message, so decoding it fills
// encoding/json's caches for every type a real one holds.
const warmStart = `{"filename":"warm-up","script":"","principal":{},"context":{},"policies":{},"limits":{}}`

// warmUp runs the parts of a script's start that cost the most the first
// time in a fresh process (decoding the Start message, building the
// modules, compiling and running a program, a print) on nothing: the
// program has no host (Host is nil, so no operation could reach the host)
// and its output is discarded.
func warmUp() {
	var st workerproto.Start
	_ = workerproto.Decode(workerproto.TypeStart, []byte(warmStart), &st)
	_ = starlarkrt.Run(context.Background(), "warm-up", `print(str(len([1])))`, starlarkrt.Options{Stdout: io.Discard, MaxSteps: 1000})
}

// policySnapshot returns the policy set st's script runs with: the
// preloaded set when st names its version, otherwise the set rebuilt from
// st's files, which must have the version st names.
func policySnapshot(st *workerproto.Start, pre *authz.PolicySet) (*authz.PolicySet, error) {
	if pre != nil && pre.Version() == st.PolicyVersion {
		return pre, nil
	}
	policy, err := authz.LoadFiles(st.Policies)
	if err != nil {
		return nil, fmt.Errorf("worker: policy snapshot does not load: %v", err)
	}
	if policy.Version() != st.PolicyVersion {
		return nil, fmt.Errorf("worker: policy snapshot is %s, want %s", policy.Version(), st.PolicyVersion)
	}
	return policy, nil
}
