// Package bench holds keyhole's measurements against other servers, in
// the same run and on loopback (docs/BENCHMARKS.md). It has no code of its
// own; everything is in its test files:
//
//   - BenchmarkVsOpenSSH runs the same tasks through keyhole and OpenSSH's
//     sshd, both driven by the stock ssh client, and reports both times and
//     their ratio: go test -run '^$' -bench . -benchtime 40x ./bench/
//     (it skips when ssh, ssh-keygen or sshd is not installed);
//   - TestFloodAudit (KEYHOLE_FLOOD=60s) floods keyhole with unauthenticated
//     connections and measures the audit log's growth;
//   - TestThroughput (KEYHOLE_THROUGHPUT=2000) measures sessions per second
//     of keyhole against a bare gliderlabs/ssh server;
//   - TestSftpThroughput (KEYHOLE_SFTP_BENCH=5) moves 100 MiB with the stock
//     sftp (get, put) and scp (download) through keyhole's sftp subsystem
//     and OpenSSH's internal-sftp.
//
// The three tests skip at once unless their variable is set.
package bench
