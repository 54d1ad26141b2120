package main

// Signals of a running server, besides SIGHUP (reload, serve.go):
//
//   - SIGTERM or SIGINT stops the server: no new connections or sessions;
//     running scripts have shutdown_grace to end; those still running
//     then end with "INTERNAL: server shutting down" (exit status 125).
//     Every audit line, each session's session.end included, is written
//     before the process exits. A second SIGTERM or SIGINT during the
//     grace ends the running scripts at once.
//   - SIGUSR1 reopens the audit log file, for log rotation (logrotate
//     renames the file, then signals); without a file it is ignored.

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyhole-dev/keyhole/sshserver"
)

// defaultShutdownGrace is shutdown_grace when the config leaves it out.
const defaultShutdownGrace = 30 * time.Second

// shutdownGrace is cfg's shutdown_grace.
func shutdownGrace(cfg *config) time.Duration {
	if cfg.ShutdownGrace == nil {
		return defaultShutdownGrace
	}
	return cfg.ShutdownGrace.Duration
}

// notifySignals starts delivering the signals of a running server to r.
func (r *running) notifySignals() {
	r.hup = make(chan os.Signal, 1)
	r.usr1 = make(chan os.Signal, 1)
	r.term = make(chan os.Signal, 2)
	signal.Notify(r.hup, syscall.SIGHUP)
	signal.Notify(r.usr1, syscall.SIGUSR1)
	// The first SIGTERM or SIGINT also ends the command's context (see
	// mainExit); r.term counts them, so the second can cut the grace.
	signal.Notify(r.term, syscall.SIGTERM, syscall.SIGINT)
}

func (r *running) stopSignals() {
	signal.Stop(r.hup)
	signal.Stop(r.usr1)
	signal.Stop(r.term)
}

// reopenAudit answers SIGUSR1.
func (r *running) reopenAudit() {
	if r.audit.file == nil {
		r.log.Info("SIGUSR1 ignored: the audit log is not a file")
		return
	}
	if err := r.audit.file.Reopen(); err != nil {
		// Lines still go to the file that was open: none is lost.
		r.log.WithError(err).Error("audit log not reopened; lines still go to the file that was open")
		return
	}
	r.log.Info("audit log reopened")
}

// shutdown stops the server gracefully (sshserver.Server.Shutdown) within
// r.grace; terms is how many SIGTERM/SIGINT have been received so far:
// the second ends the running scripts at once. SIGHUP and SIGUSR1 are
// still answered while it waits.
func (r *running) shutdown(terms int) error {
	r.log.WithField("grace", r.grace.String()).
		Info("stopping: no new connections or sessions; running scripts may finish within the grace")
	ctx, cancel := context.WithTimeout(context.Background(), r.grace)
	defer cancel()
	type result struct {
		st  sshserver.ShutdownStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := r.srv.Shutdown(ctx)
		done <- result{st, err}
	}()
	for {
		if terms >= 2 && ctx.Err() == nil {
			r.log.Warn("second stop signal: ending running scripts now")
			cancel()
		}
		select {
		case <-r.term:
			terms++
		case <-r.hup:
			for _, f := range r.onHUP {
				f()
			}
		case <-r.usr1:
			r.reopenAudit()
		case res := <-done:
			<-r.errc // Serve has returned
			r.log.WithField("running", res.st.Running).WithField("ended", res.st.Ended).
				Infof("stopped: %d of %d running sessions ended by the shutdown", res.st.Ended, res.st.Running)
			return res.err
		}
	}
}
