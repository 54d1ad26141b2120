// Package sshserver owns keyhole's SSH listener: the handshake, public-key
// authentication into an Identity, the dispatch of channel and session
// requests, their refusal, and the running of one script per session (in a
// worker process from a worker.Pool: package worker starts, pools and
// supervises workers; the session supplies the Start message, the audit
// template and where prints and decisions go).
//
// Invariants:
//   - The identity of a connection comes only from the Permissions that x/crypto/ssh
//     attaches to the key that really authenticated (ServerConn.Permissions);
//     nothing is kept from keys a client merely offered.
//   - "none" authentication is never accepted: gliderlabs/ssh turns on
//     NoClientAuth when it has no handler of its own, so the server installs
//     a keyboard-interactive handler that always refuses.
//   - Only "session" channels are accepted; within them only exec,
//     subsystem starlark and pty-req (acknowledged, no terminal) are; every
//     other channel type, global request and session request is refused and
//     audited. No request type reaches gliderlabs' default session handler.
//   - Each session runs with the policy snapshot taken when it started.
package sshserver
