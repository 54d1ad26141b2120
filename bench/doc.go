// Package bench holds keyhole's comparative benchmarks: each one runs the
// same task through keyhole and through OpenSSH's sshd, both driven by the
// stock ssh client on loopback, in the same run, and reports both times
// and their ratio (docs/BENCHMARKS.md). It has no code of its own; the
// benchmarks are in its test files:
//
//	go test -run '^$' -bench . -benchtime 40x ./bench/
//
// They skip when ssh, ssh-keygen or sshd is not installed.
package bench
