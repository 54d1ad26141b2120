package hostops

import "testing"

// WithoutOpenat2 makes pinning use plain open(O_PATH), as on a kernel
// without openat2, until t ends. The caller must not run in parallel.
func WithoutOpenat2(t testing.TB) {
	old := openat2State.Load()
	openat2State.Store(openat2Absent)
	t.Cleanup(func() { openat2State.Store(old) })
}

// HaveOpenat2 reports whether pinning uses openat2.
func HaveOpenat2() bool { return haveOpenat2() }

// WithoutTmpfile makes writes use a named temporary file, as on a file
// system without O_TMPFILE, until t ends. The caller must not run in
// parallel.
func WithoutTmpfile(t testing.TB) {
	old := noTmpfile.Load()
	noTmpfile.Store(true)
	t.Cleanup(func() { noTmpfile.Store(old) })
}
