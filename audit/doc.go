// Package audit owns keyhole's audit event type and the writer that turns
// each event into one JSON line.
//
// Invariants:
//   - One Event is one line; a line is written with a single write call while
//     the writer's lock is held, so concurrent sessions never interleave.
//   - The writer never buffers: when Log returns, the line has been handed to
//     the kernel, so lines are not lost when a session or the process ends.
//   - Events carry identities, paths and decisions, never file contents,
//     script text or key material; callers must not put secrets in Reason.
package audit
