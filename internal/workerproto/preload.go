package workerproto

// TypePreload is the type of the Preload message: server → worker, JSON.
const TypePreload Type = 5

// Preload is the message a pooled worker may get before its Start, while
// it waits for a session: the policy set of record at that time. The
// worker loads and validates it (authz.LoadFiles) and warms its runtime
// while idle. A Start whose PolicyVersion equals the version the worker
// computed from these files runs with that set, and the server then omits
// Start.Policies; a Start naming any other version must carry its files,
// which the worker loads and checks as it always does. The version is the
// content hash the worker computes itself, so a session never runs with a
// set other than the one it started with.
//
// At most one Preload comes, and only before the Start.
type Preload struct {
	Policies      map[string][]byte `json:"policies"`
	PolicyVersion string            `json:"policy_version"`
}
