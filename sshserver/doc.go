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
//     subsystems starlark, keyhole and sftp, and pty-req (acknowledged, no
//     terminal) are; an exec of scp (the legacy scp protocol) is refused
//     with one line telling the client to drop -O; every
//     other channel type, global request and session request is refused and
//     audited. No request type reaches gliderlabs' default session handler.
//   - Each session runs with the policy snapshot taken when it started.
//   - Subsystem sftp runs in this process (sftp_linux.go, docs/files.md):
//     each request is one hostops operation of the session's Host, a panic
//     in a request or in decoding ends that session only, and the session
//     is bounded by max_read, max_write, max_operations, max_wall, the idle
//     timeout and MaxSftpHandles.
package sshserver
