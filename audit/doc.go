// Package audit owns keyhole's audit event type and the writer that turns
// each event into one JSON line.
//
// Invariants:
//   - One Event is one line; a line is encoded by the package itself (no
//     logger in between) and written with a single write call while the
//     writer's lock is held, so concurrent sessions never interleave.
//   - The writer never buffers: when Log returns nil, the line has been
//     handed to the kernel, so lines are not lost when a session or the
//     process ends.
//   - Audit fails closed: Log returns an error when its line was not
//     written whole, and the caller must then not do what the line records.
//     A broken writer stays broken until an audit.resumed line is written
//     (Writer).
//   - Every string field is capped (MaxField, MaxPathField) with a visible
//     truncation marker, so no client can make one line large.
//   - Events carry identities, paths and decisions, never file contents,
//     script text or key material; callers must not put secrets in Reason.
package audit
