package audit

// The audit log on the local syslog daemon or the systemd journal: one
// message per line, facility authpriv. The Writer's fail-closed machinery
// is the same as for a file: a message that cannot be sent fails its
// line, and the writer stays broken until an audit.resumed message is
// sent.

import (
	"fmt"
	"log/syslog"
)

// SyslogTag is the tag (program name) of every audit message sent to
// syslog.
const SyslogTag = "keyhole-audit"

// SyslogPriority is the facility and severity of every audit message:
// authpriv, as sshd logs authentication, at info.
const SyslogPriority = syslog.LOG_AUTHPRIV | syslog.LOG_INFO

// OpenSyslog returns a Writer that sends each line as one message to a
// syslog daemon: with network and raddr empty, the local one (/dev/log,
// which journald also serves); otherwise the daemon at raddr on network
// (as net.Dial takes them, e.g. "unixgram" and a socket path). It fails
// when the daemon cannot be reached now. A message that cannot be sent
// later is retried once on a new connection (log/syslog does so), then
// fails its line.
func OpenSyslog(network, raddr string) (*Writer, error) {
	sw, err := syslog.Dial(network, raddr, SyslogPriority, SyslogTag)
	if err != nil {
		where := raddr
		if where == "" {
			where = "the local syslog daemon"
		}
		return nil, fmt.Errorf("audit: syslog: connect to %s: %w", where, err)
	}
	return &Writer{out: sw, closer: sw}, nil
}
