// Package outcome is the vocabulary of how a script's host operations and
// the script itself end, shared by every layer: the error kinds, the
// error a script and its client see, the exit statuses of the wire
// protocols, and the mapping between them. It is a leaf: it imports
// nothing of keyhole's, so hostops, starlarkrt, the worker protocol and
// the server all speak it without importing one another.
//
// Invariants:
//   - Every kind maps to exactly one exit status (ExitFor), and every exit
//     status other than ExitOK comes with an Error whose Kind is set
//     (ValidEnd).
//   - An Error's Message is written for the script's author and never
//     holds file contents.
package outcome
