package sshserver_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/sshserver"
)

// TestSftpLimits: max_read, max_write and max_wall bound one sftp
// session; past one the session ends LIMIT_EXCEEDED (exit 124), the
// upload past the write budget leaves the old file.
func TestSftpLimits(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	tests := []struct {
		name   string
		limits sshserver.Limits
		batch  string // D: the allowed directory, L: a local 64 KiB file
		reason string
	}{
		{"max-read", sshserver.Limits{MaxRead: 16 << 10}, "get D/big O", "read limit of 16384 bytes"},
		{"max-write", sshserver.Limits{MaxWrite: 16 << 10}, "put L D/app.conf", "write limit of 16384 bytes"},
		{"max-operations", sshserver.Limits{MaxOperations: 4}, "ls D\nls D\nls D", "operation limit of 4"},
		{"max-wall", sshserver.Limits{MaxWall: 300 * time.Millisecond}, "", "wall-time limit of 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startSftpEnv(t, tt.limits)
			d := e.Sandbox + "/deploy"
			local := filepath.Join(e.Dir, "local")
			for _, p := range []string{local, d + "/big"} {
				if err := os.WriteFile(p, []byte(big), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(e.Dir, "out")
			if tt.batch != "" {
				r := e.SFTPBatch(t, "deploy", strings.NewReplacer("D", d, "L", local, "O", out).Replace(tt.batch)+"\n")
				if r.Exit == 0 {
					t.Fatalf("exit 0 past the limit")
				}
			} else if exit := rawSftp(t, e, sftpPacket(fxpInit, u32(3)), false); exit != 124 {
				// A session that sends nothing more is ended at max_wall.
				t.Errorf("exit %d, want 124", exit)
			}
			end := e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "session.end" })
			if fmt.Sprint(end["exit"]) != "124" || !strings.Contains(end["reason"].(string), tt.reason) {
				t.Errorf("session.end = %v", end)
			}
			wantFile(t, d+"/app.conf", "old config\n")
			if b, err := os.ReadFile(out); err == nil && len(b) > 16<<10 {
				t.Errorf("%d bytes read past the limit", len(b))
			}
		})
	}
}

// TestSftpIdle: an sftp session is no running script: a connection that
// moves nothing for idle_timeout is closed.
func TestSftpIdle(t *testing.T) {
	e := startSftpEnv(t, sshserver.Limits{IdleTimeout: 300 * time.Millisecond})
	start := time.Now()
	if exit := rawSftp(t, e, sftpPacket(fxpInit, u32(3)), false); exit == 0 {
		t.Errorf("exit 0 for an idle session")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("idle session closed after %v", d)
	}
	end := e.WaitAudit(t, func(ev map[string]any) bool { return ev["event"] == "session.end" })
	if end["transport"] != "sftp" {
		t.Errorf("session.end = %v", end)
	}
}
