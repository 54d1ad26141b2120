// Package keys owns keyhole's key material and the rules that turn an SSH
// public key into an identity: trusted user CA files, host keys and the
// OpenSSH user-certificate rules.
//
// Invariants:
//   - An Identity is only ever derived from the one key that authenticated;
//     Check is a pure function of that key, the login name, the source
//     address and the clock.
//   - Every refusal is a named error value (errCertExpired, …) whose Reason
//     is what the audit line records; the client only sees a generic
//     refusal.
//   - Private keys are written with mode 0600 and never logged.
package keys
