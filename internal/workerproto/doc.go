// Package workerproto is the wire protocol between the keyhole server and
// the worker process that runs one script (DESIGN.md, "Worker process per
// script").
//
// The server writes one Start message to the worker's stdin and keeps the
// pipe open; closing it (EOF) asks the worker to stop the script. A pooled
// worker may get one Preload message first, while it waits (preload.go).
// The worker writes Print messages to its stdout as the script runs, and
// ends with exactly one Result message.
//
// Decisions go through the decision ring (ring.go, decision.go): a region
// of shared memory, a sealed memfd the server makes for each worker and
// passes as descriptor RingFD (3), which the worker maps and then closes.
// The worker puts one record (AppendDecision) for each decision before
// the operation it records acts, without a system call; the server takes
// them out (Take, ParseDecision) and writes their lines. The region
// outlives the worker, so the server reads every record a worker put
// there even when it was killed with SIGKILL the moment after.
//
// Order and fail-closed audit (DESIGN.md, invariant 5):
//   - Before each Print message, the worker puts a print mark (an empty
//     record) in the ring. Before the server handles any message it takes
//     the records put so far, up to the next print mark; for a Print it
//     also takes that mark, which must be there. So a decision made before
//     a print is logged (and streamed, in the structured protocol) before
//     the print is forwarded, and one made after comes after it. While the
//     worker's pipe is quiet, the server takes records up to the next mark
//     as well, so lines are written while a script computes; once the
//     worker is gone (its result, exit, crash or kill), it takes what is
//     left, marks skipped.
//   - A decision whose operation changes the host (hostops.Acts: an
//     allowed write, create, delete, mkdir, rename, chmod, exec, service
//     start, stop, restart or reload) is followed by a Sync message, and
//     the worker waits for a Confirm message on its stdin before the
//     operation acts. The server sends Confirm only after every line up to
//     the Sync is in the audit log. A full ring is emptied the same way: a
//     Sync, its Confirm, and the record put once more. One Sync is
//     outstanding at a time; a Confirm nobody waits for, any other message
//     after the Start, or the end of stdin cancels the script, and an
//     operation still waiting does not act.
//   - Every other decision (reads, stats, lists, denials, queries) needs
//     no message at all. When the server cannot write a line, it kills the
//     worker and forwards nothing after (no print, no result), so what the
//     operation read never leaves the worker.
//   - A decision the ring cannot carry (a record over MaxRecord, such as an
//     exec of a long argument vector, or more than MaxDecisionPolicies
//     policies) goes as an AuditSync message holding the audit.Event as
//     JSON, and the worker waits for its Confirm.
//
// A worker started with no ring (worker.Serve, for tests and tools that
// read its messages themselves) sends every decision as a message
// instead: AuditSync (confirmed) for a decision that acts, Audit (no
// round trip) for any other. The server accepts both from a worker with a
// ring too, handled in order after the records put before them.
//
// What a worker subverted by its script can do with its ring: write
// records, which the server turns into lines of that worker's own session
// only (it takes action, resource, decision, policies, reason and argv
// from a record, everything else from its own record of the session), and
// which it validates strictly (a header or length the worker could not
// have written honestly, a record that is not exactly one decision, a
// Print with no mark: the worker broke the protocol, is killed, and no
// line is written from that point on); or stall itself (a ring it never
// lets the server empty, a Sync it does not wait for). The file is sealed
// at its size, so the worker cannot truncate it under the server's
// mapping.
//
// fs.cat passes open files, not bytes: the worker sends a descriptor on a
// unix socket pair (descriptor FDSocketFD) and then a Cat message; the
// server streams the file and answers with CatDone (cat.go).
//
// A frame is a 4-byte big-endian payload length, a 1-byte message type and
// the payload. Print payloads are the raw bytes the script printed (they
// need not be UTF-8); every other payload is one JSON object, decoded
// strictly: unknown fields and trailing data are errors. Frames larger than
// the reader's limit are refused before their payload is read.
//
// Neither side trusts the other's bytes more than it must: the server
// treats the worker as possibly compromised by the script it runs, so
// Reader checks lengths, types and JSON shape, and callers check values.
package workerproto
