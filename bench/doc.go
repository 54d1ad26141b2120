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
//   - TestClientMemory (KEYHOLE_CLIENT_HOSTS=200) measures the client's
//     memory per host, open and in a fan-out, against keyhole serve run as
//     its own process;
//   - TestClientVsSSHProcesses (KEYHOLE_CLIENT_VS_SSH=40) compares the
//     client's fan-out with one stock ssh process per host against sshd;
//   - TestFleetTools (KEYHOLE_FLEET_BENCH=40,200,1000) runs one script on
//     N hosts with keyhole run --inventory against keyhole serve, and with
//     parallel-ssh and ansible -m raw against sshd (each skipped when not
//     installed);
//   - BenchmarkBulkReadVsOpenSSH (KEYHOLE_BULK=1) compares a script's
//     100 MiB bulk read to stdout (fs.cat) with "ssh host cat" on sshd;
//   - TestSftpThroughput (KEYHOLE_SFTP_BENCH=5) moves 100 MiB with the stock
//     sftp (get, put) and scp (download) through keyhole's sftp subsystem
//     and OpenSSH's internal-sftp;
//   - TestMCPVsRun (KEYHOLE_MCP_VS_RUN=40) compares one run_script call of
//     keyhole mcp with keyhole run to the same hosts.
//
// These tests and the bulk benchmark skip at once unless their variable
// is set.
package bench
