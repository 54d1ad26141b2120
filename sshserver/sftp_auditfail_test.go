package sshserver_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// TestSftpAuditLogRemoved: once the audit log cannot be written, an sftp
// upload does not happen and a read returns nothing; the session ends.
func TestSftpAuditLogRemoved(t *testing.T) {
	for _, op := range []string{"put", "get"} {
		t.Run(op, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			e := testenv.Start(t, testenv.Options{
				Policies:  map[string]string{"p.cedar": sftpPolicy},
				Files:     sftpFiles,
				AuditPath: filepath.Join(dir, "audit.jsonl"),
				Limits:    sshserver.Limits{},
			})
			c, err := gossh.Dial("tcp", e.Addr, e.ClientConfig("deploy", e.UserSigner(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cl, err := sftp.NewClient(c)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			target := e.Sandbox + "/deploy/app.conf"
			switch op {
			case "put":
				f, err := cl.Create(target)
				if err == nil {
					_, _ = f.Write([]byte("must not land"))
					err = f.Close()
				}
				if err == nil {
					t.Error("upload succeeded with the audit log gone")
				}
			case "get":
				f, err := cl.Open(target)
				if err == nil {
					b, _ := io.ReadAll(f)
					if len(b) > 0 {
						t.Errorf("read %q with the audit log gone", b)
					}
				}
			}
			wantFile(t, target, "old config\n")
			entries, _ := os.ReadDir(e.Sandbox + "/deploy")
			for _, en := range entries {
				if strings.HasPrefix(en.Name(), ".keyhole-tmp-") {
					t.Errorf("temporary file %s left", en.Name())
				}
			}
		})
	}
}

// TestSftpInPlaceRefused: a truncate of a file (setstat of the size) and
// an open for append are refused with a request.refused line; the file
// is unchanged.
func TestSftpInPlaceRefused(t *testing.T) {
	e := startSftpEnv(t, sshserver.Limits{})
	c, err := gossh.Dial("tcp", e.Addr, e.ClientConfig("deploy", e.UserSigner(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	target := e.Sandbox + "/deploy/app.conf"
	if err := cl.Truncate(target, 3); err == nil {
		t.Error("truncate succeeded")
	}
	if f, err := cl.OpenFile(target, os.O_WRONLY|os.O_APPEND); err == nil {
		_, werr := f.Write([]byte("appended"))
		cerr := f.Close()
		if werr == nil && cerr == nil {
			t.Error("append succeeded")
		}
	}
	wantFile(t, target, "old config\n")
	n := 0
	for _, ev := range e.Audit(t) {
		if ev["event"] == "request.refused" && ev["transport"] == "sftp" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d refusal lines, want 2", n)
	}
}
