package sshserver

import (
	"io"
	"path"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/audit"
)

// msgLegacySCP is the one line a client of the legacy scp protocol
// (`scp -O`, an exec of `scp -t` or `scp -f`) gets on stderr.
const msgLegacySCP = "keyhole: the legacy scp protocol (scp -O) is not served; drop -O: OpenSSH 9 scp uses SFTP, which keyhole serves under the same policy\n"

// legacySCP reports whether an exec command is the remote end of the
// legacy scp protocol: its first word is scp (or a path ending in /scp)
// and one of the options before the first operand is -t or -f, alone or
// among other letters (scp -v -d -t -- /dir). A script that starts with a
// variable named scp is not one.
func legacySCP(cmd string) bool {
	f := strings.Fields(cmd)
	if len(f) < 2 || path.Base(f[0]) != "scp" {
		return false
	}
	for _, a := range f[1:] {
		if a == "--" || len(a) < 2 || a[0] != '-' {
			return false
		}
		if strings.ContainsAny(a[1:], "tf") {
			return true
		}
	}
	return false
}

// refuseSCP accepts the exec request (so the client reads what follows),
// says on stderr to drop -O, and audits the refusal; the caller then ends
// the session with a non-zero exit status.
func (ss *session) refuseSCP(req *gossh.Request, cmd string) {
	if len(cmd) > maxShownCommand {
		cmd = cmd[:maxShownCommand] + "..."
	}
	_ = ss.log(audit.Event{Event: audit.RequestRefused, Request: "exec", Reason: "legacy scp protocol (scp -O) not served: " + cmd})
	_ = req.Reply(true, nil)
	line := msgLegacySCP
	if ss.pty {
		line = string(crlf([]byte(line)))
	}
	_, _ = io.WriteString(ss.ch.Stderr(), line)
}

// maxShownCommand is how much of a refused command the audit line keeps.
const maxShownCommand = 256
