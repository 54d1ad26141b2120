package hostops

import "testing"

// OnExecAuthorized makes f run between the authorization of each program
// Exec runs and its start, until t ends. The caller must not run in
// parallel.
func OnExecAuthorized(t testing.TB, f func(path string)) {
	old := testHookExecAuthorized
	testHookExecAuthorized = f
	t.Cleanup(func() { testHookExecAuthorized = old })
}
