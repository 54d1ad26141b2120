package main

// Where audit lines go: a file (reopened on SIGUSR1 for log rotation),
// stdout ("-"), the local syslog ("syslog"), or a file and syslog
// (audit_syslog = true). The server log (logrus, stderr) is a different
// stream and never carries audit lines.

import (
	"fmt"

	"github.com/keyhole-dev/keyhole/audit"
)

// auditLogSyslog is the audit_log value that sends audit lines to the
// local syslog daemon (or the systemd journal) instead of a file.
const auditLogSyslog = "syslog"

// checkAuditConfig checks audit_log and audit_syslog together.
func checkAuditConfig(c *config, path string) error {
	if c.AuditSyslog && (c.AuditLog == auditLogSyslog || c.AuditLog == "-") {
		return fmt.Errorf("config %s: audit_syslog = true needs audit_log to name a file, not %q", path, c.AuditLog)
	}
	return nil
}

// auditOutputs is the audit log of a server: the sink every line goes to,
// the file writer that SIGUSR1 reopens (nil when lines go to no file),
// and every writer to close at the end.
type auditOutputs struct {
	sink    audit.Sink
	file    *audit.Writer
	writers []*audit.Writer
}

// openAudit opens what cfg's audit_log and audit_syslog name; notify is
// told when lines start and stop failing (audit.Writer.Notify).
func openAudit(cfg *config, notify func(error)) (*auditOutputs, error) {
	var out auditOutputs
	switch cfg.AuditLog {
	case auditLogSyslog:
		w, err := audit.OpenSyslog("", "")
		if err != nil {
			return nil, err
		}
		out.writers = append(out.writers, w)
	default:
		// syslog first: when it cannot be reached, no file is created.
		var sw *audit.Writer
		if cfg.AuditSyslog {
			var err error
			if sw, err = audit.OpenSyslog("", ""); err != nil {
				return nil, err
			}
		}
		w, err := audit.Open(cfg.AuditLog)
		if err != nil {
			if sw != nil {
				_ = sw.Close()
			}
			return nil, err
		}
		out.writers = append(out.writers, w)
		if w.Reopens() {
			out.file = w
		}
		if sw != nil {
			out.writers = append(out.writers, sw)
		}
	}
	sinks := make([]audit.Sink, len(out.writers))
	for i, w := range out.writers {
		w.Notify(notify)
		sinks[i] = w
	}
	out.sink = sinks[0]
	if len(sinks) > 1 {
		out.sink = audit.Tee(sinks...)
	}
	return &out, nil
}

// Close closes every writer.
func (a *auditOutputs) Close() error {
	var first error
	for _, w := range a.writers {
		if err := w.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
