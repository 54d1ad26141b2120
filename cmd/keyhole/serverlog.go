package main

// The server log: what the server says about itself (listening, reloads,
// refused connections, worker trouble, stopping). It goes to stderr
// through logrus, as text when stderr is a terminal and as JSON objects,
// one a line, otherwise (a journal or a log shipper reads it), unless
// --log-format says which. It is not the audit log: audit lines are
// written by package audit to audit_log, never through logrus.

import (
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Server log formats (serve --log-format).
const (
	logFormatText = "text"
	logFormatJSON = "json"
)

// checkLogFormat checks a --log-format value; "" chooses by the terminal.
func checkLogFormat(f string) error {
	switch f {
	case "", logFormatText, logFormatJSON:
		return nil
	}
	return &usageError{fmt.Sprintf("--log-format %q: want text or json", f)}
}

// newServerLog returns the server log, writing to w in format ("" chooses
// text on a terminal, JSON otherwise).
func newServerLog(w io.Writer, format string) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(w)
	if format == "" {
		format = logFormatJSON
		if isTerminal(w) {
			format = logFormatText
		}
	}
	if format == logFormatJSON {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{})
	}
	return log
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
