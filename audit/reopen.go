package audit

// Reopening the audit log for log rotation: logrotate renames the file,
// then signals the server (SIGUSR1), which calls Reopen.

import "fmt"

// Reopen opens the log again at the path Open opened, so that lines go to
// a new file once the old one has been renamed, and closes the old file.
// The swap happens under the writer's lock: every line goes whole to the
// old file or the new one, and none is lost. When the path cannot be
// opened, lines keep going to the old file and Reopen returns the error.
// A writer that has no path (stdout, syslog) does nothing and returns nil;
// Reopens reports whether it would reopen a file.
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file == nil || w.path == "" {
		return nil
	}
	f, err := openLog(w.path)
	if err != nil {
		return fmt.Errorf("audit: reopen: %w", err)
	}
	_ = w.file.Close()
	w.file, w.out = f, f
	return nil
}

// Reopens reports whether Reopen opens a file again: false for a writer
// on stdout, on syslog, or on any io.Writer.
func (w *Writer) Reopens() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.file != nil && w.path != ""
}
