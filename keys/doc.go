// Package keys owns keyhole's key material and the rules that turn an SSH
// public key into an identity: trusted user CA files, the OpenSSH
// user-certificate rules, the keys file (plain keys in authorized_keys
// format), OpenSSH key revocation lists (KRL, read and written), host keys
// and host certificates, and certificate signing for "keyhole ca".
//
// Authenticator combines them: certificates by CertRules, plain keys by the
// keys file, both against the KRL, with the files reloaded whole on SIGHUP
// (Reload) and on change (Watch).
//
// Invariants:
//   - An Identity is only ever derived from the one key that authenticated;
//     Check is a pure function of that key, the login name, the source
//     address, the clock and the loaded files.
//   - Every refusal is a named error value (ErrCertExpired, ErrRevoked, …)
//     whose Reason is what the audit line records; the client only sees a
//     generic refusal. Details name serials, key ids and fingerprints, never
//     key material.
//   - Revocation fails closed: a KRL that cannot be read or parsed refuses
//     every key until a reload succeeds; a broken keys file refuses every
//     plain key.
//   - Private keys are written with mode 0600 and never logged.
package keys
