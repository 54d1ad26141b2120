// Package workerproto is the wire protocol between the keyhole server and
// the worker process that runs one script (DESIGN.md, "Worker process per
// script").
//
// The server writes one Start message to the worker's stdin and keeps the
// pipe open; closing it (EOF) asks the worker to stop the script. A pooled
// worker may get one Preload message first, while it waits (preload.go). The
// worker writes Audit and Print messages to its stdout as the script runs,
// each Audit message before the operation it records acts, and ends with
// exactly one Result message.
//
// Audit fails closed across the pipe (DESIGN.md, invariant 5):
//   - A decision whose operation changes the host (hostops.Acts: an allowed
//     write, create, delete, mkdir, rename, chmod, exec, service start,
//     stop, restart or reload) goes as an AuditSync message, and the worker
//     waits for a Confirm message on its stdin before the operation acts.
//     The server sends Confirm only after the line is in the audit log. One
//     AuditSync is outstanding at a time; a Confirm nobody waits for, any
//     other message after the Start, or the end of stdin cancels the script,
//     and an operation still waiting does not act.
//   - Every other decision (reads, stats, lists, denials, queries) goes as
//     an Audit message, with no round trip. The server handles the worker's
//     messages in order: when it cannot write a line, it kills the worker
//     and forwards nothing the worker sent after that message (no print, no
//     result), so what the operation read never leaves the worker.
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
