// Package testenv builds the real parts keyhole's end-to-end tests run
// against: keys and certificates made by the stock ssh-keygen, a sandbox
// directory, policies, and an in-process server on 127.0.0.1:0 driven by
// the stock ssh client. It is imported by tests only.
package testenv
