// Package client is keyhole's Go client: it connects to keyhole hosts the
// way OpenSSH does (private keys, the certificate beside each key,
// ssh-agent, known_hosts with @cert-authority, ProxyJump through OpenSSH
// bastions), runs scripts through the structured subsystem "keyhole" and
// returns their structured results, and fans one script out to many
// hosts with a bounded pool.
//
// A Dialer holds what every connection shares (identities, the agent,
// the known hosts) and is safe for concurrent use; a Client is one
// connection to one host and runs any number of scripts, one session
// each, also concurrently. Cancelling the context of Run closes the
// session, and the server then ends the script.
//
// Errors of connecting are typed, so a caller can tell them apart:
// *HostKeyError (a key that does not match, or a host not known),
// *AuthError (every identity refused), *UnreachableError (no TCP
// connection) and *TimeoutError (a timeout or deadline passed).
package client
