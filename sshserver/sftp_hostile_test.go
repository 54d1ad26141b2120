package sshserver_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// sftpPacket frames one sftp packet: length, type, then the body.
func sftpPacket(typ byte, body ...[]byte) []byte {
	var b bytes.Buffer
	for _, p := range body {
		b.Write(p)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(1+b.Len()))
	out = append(out, typ)
	return append(out, b.Bytes()...)
}

func u32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func sstr(s string) []byte { return append(u32(uint32(len(s))), s...) }

const (
	fxpInit = 1
	fxpOpen = 3
	fxRead  = 1
)

// rawSftp opens subsystem sftp as deploy over x/crypto and writes
// stream; it returns the exit status the server sent (-1 if none) once
// the session has ended.
func rawSftp(t *testing.T, e *testenv.Env, stream []byte, closeWrite bool) int {
	t.Helper()
	c, err := gossh.Dial("tcp", e.Addr, e.ClientConfig("deploy", e.UserSigner(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ok, err := ch.SendRequest("subsystem", true, gossh.Marshal(struct{ Name string }{"sftp"}))
	if err != nil || !ok {
		t.Fatalf("subsystem sftp: %v %v", ok, err)
	}
	go func() { _, _ = io.Copy(io.Discard, ch) }()
	go func() { _, _ = io.Copy(io.Discard, ch.Stderr()) }()
	go func() {
		_, _ = ch.Write(stream)
		if closeWrite {
			_ = ch.CloseWrite()
		}
	}()
	exit := -1
	timeout := time.After(30 * time.Second)
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				return exit
			}
			if req.Type == "exit-status" && len(req.Payload) == 4 {
				exit = int(binary.BigEndian.Uint32(req.Payload))
				_ = ch.Close()
			}
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		case <-timeout:
			t.Fatal("the session did not end")
		}
	}
}

// TestSftpHostileStreams: garbage, truncated packets, a 4 GiB length
// field and 10,000 open handles end the session only; the server then
// serves the next client.
func TestSftpHostileStreams(t *testing.T) {
	e := startSftpEnv(t, sshserver.Limits{})
	init := sftpPacket(fxpInit, u32(3))
	garbage := make([]byte, 64<<10)
	rand.New(rand.NewSource(1)).Read(garbage)
	var opens bytes.Buffer
	opens.Write(init)
	for i := 0; i < 10_000; i++ {
		opens.Write(sftpPacket(fxpOpen, u32(uint32(i+1)), sstr(e.Sandbox+"/deploy/app.conf"), u32(fxRead), u32(0)))
	}
	tests := []struct {
		name       string
		stream     []byte
		closeWrite bool
		wantExit   int // -1: any
	}{
		{"garbage", garbage, false, 125},
		{"garbage-after-init", append(append([]byte{}, init...), garbage...), false, 125},
		{"truncated", append(append([]byte{}, init...), u32(100)...), true, 125},
		{"truncated-body", append(append(append([]byte{}, init...), u32(100)...), 3, 0, 0), true, 125},
		{"length-4GiB", append(append([]byte{}, init...), 0xff, 0xff, 0xff, 0xff, fxpOpen), false, 125},
		{"length-zero", append(append([]byte{}, init...), 0, 0, 0, 0), false, -1},
		{"unknown-type", append(append([]byte{}, init...), sftpPacket(250, u32(1))...), true, -1},
		{"open-short-body", append(append([]byte{}, init...), sftpPacket(fxpOpen, u32(1), u32(1000))...), false, 125},
		{"10000-handles", opens.Bytes(), false, 124},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, ends := snapshot(t, e.Sandbox), countEnds(e.Audit(t))
			exit := rawSftp(t, e, tt.stream, tt.closeWrite)
			waitFor(t, "the session.end line", func() bool { return countEnds(e.Audit(t)) > ends })
			if after := snapshot(t, e.Sandbox); !reflect.DeepEqual(before, after) {
				t.Errorf("the disk changed:\n%v\n%v", before, after)
			}
			if tt.wantExit >= 0 && exit != tt.wantExit {
				t.Errorf("exit %d, want %d", exit, tt.wantExit)
			}
			// The next client is served.
			r := e.SFTPBatch(t, "deploy", "ls "+e.Sandbox+"/deploy\n")
			if r.Exit != 0 || !strings.Contains(r.Stdout, "app.conf") {
				t.Fatalf("next client: exit %d, %q %q", r.Exit, r.Stdout, r.Stderr)
			}
		})
	}
	n := 0
	for _, ev := range e.Audit(t) {
		if ev["event"] == "session.end" && strings.Contains(ev["reason"].(string), "more than 256 open sftp handles") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d session.end lines for the handle cap, want 1", n)
	}
}

// TestSftpSymlinkTricks: a symlink planted in the allowed directory that
// leads into the forbidden one lets nothing through, by get, put or
// rename.
func TestSftpSymlinkTricks(t *testing.T) {
	e := startSftpEnv(t, sshserver.Limits{})
	d, sec := e.Sandbox+"/deploy", e.Sandbox+"/secrets"
	for link, target := range map[string]string{"file-link": sec + "/token", "dir-link": sec} {
		if err := os.Symlink(target, filepath.Join(d, link)); err != nil {
			t.Fatal(err)
		}
	}
	local := filepath.Join(e.Dir, "evil.txt")
	if err := os.WriteFile(local, []byte("overwritten\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, sec)
	for _, cmd := range []string{
		"get " + d + "/file-link " + e.Dir + "/out1",
		"get " + d + "/dir-link/token " + e.Dir + "/out2",
		"put " + local + " " + d + "/file-link",
		"put " + local + " " + d + "/dir-link/new",
		"put " + local + " " + d + "/dir-link/token",
		"rename " + d + "/dir-link/token " + d + "/stolen",
		"rename " + d + "/app.conf " + d + "/dir-link/app.conf",
		"ls " + d + "/dir-link",
		"chmod 666 " + d + "/file-link",
	} {
		r := e.SFTPBatch(t, "deploy", cmd+"\n")
		if r.Exit == 0 {
			t.Errorf("%s: exit 0", cmd)
		}
		if strings.Contains(r.Stdout, "TOPSECRET") || strings.Contains(r.Stdout, "token") && strings.HasPrefix(cmd, "ls") {
			t.Errorf("%s leaked: %q", cmd, r.Stdout)
		}
	}
	for _, out := range []string{"out1", "out2"} {
		wantMissing(t, filepath.Join(e.Dir, out))
	}
	wantMissing(t, d+"/stolen")
	wantFile(t, d+"/app.conf", "old config\n")
	if after := snapshot(t, sec); !reflect.DeepEqual(before, after) {
		t.Errorf("secrets changed:\nbefore %v\nafter  %v", before, after)
	}
}

// TestSftpSymlinkSwap: a symlink swapped between an allowed file and a
// forbidden one while it is fetched, over and over, never lets the
// forbidden bytes out.
func TestSftpSymlinkSwap(t *testing.T) {
	e := startSftpEnv(t, sshserver.Limits{})
	d := e.Sandbox + "/deploy"
	allowed := strings.Repeat("A", 1<<20) // many reads: swaps land during transfers
	if err := os.WriteFile(d+"/public", []byte(allowed), 0o644); err != nil {
		t.Fatal(err)
	}
	link := d + "/swap"
	if err := os.Symlink(d+"/public", link); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var swaps atomic.Int64
	go func() {
		defer wg.Done()
		targets := []string{e.Sandbox + "/secrets/token", d + "/public"}
		for i := 0; ctx.Err() == nil; i++ {
			tmp := d + "/.swap-tmp"
			_ = os.Remove(tmp)
			if os.Symlink(targets[i%2], tmp) == nil && os.Rename(tmp, link) == nil {
				swaps.Add(1)
			}
		}
	}()
	got, denied := 0, 0
	for i := 0; i < 20; i++ {
		out := filepath.Join(e.Dir, "swap-out")
		_ = os.Remove(out)
		r := e.SFTPBatch(t, "deploy", "get "+link+" "+out+"\n")
		b, _ := os.ReadFile(out)
		if bytes.Contains(b, []byte("TOPSECRET")) || strings.Contains(r.Stdout+r.Stderr, "TOPSECRET") {
			t.Fatalf("run %d: forbidden bytes leaked", i)
		}
		if r.Exit == 0 {
			if string(b) != allowed {
				t.Fatalf("run %d: got %d bytes that are not the allowed file", i, len(b))
			}
			got++
		} else {
			denied++
		}
	}
	cancel()
	wg.Wait()
	t.Logf("%d fetched, %d refused, %d swaps", got, denied, swaps.Load())
}

// TestSftpUploadKilled: an upload whose client is killed half-way leaves
// the old file and no temporary file, 20 times over.
func TestSftpUploadKilled(t *testing.T) {
	e := startSftpEnv(t, sshserver.Limits{})
	d := e.Sandbox + "/deploy"
	local := filepath.Join(e.Dir, "big")
	big := bytes.Repeat([]byte("new content that must never be seen half-written\n"), (4<<20)/50)
	if err := os.WriteFile(local, big, 0o644); err != nil {
		t.Fatal(err)
	}
	batch := filepath.Join(e.Dir, "batch")
	if err := os.WriteFile(batch, []byte("put "+local+" "+d+"/app.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 20; run++ {
		ends := countEnds(e.Audit(t))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		// -l slows the client so the kill lands while it writes.
		cmd := e.SFTPCommand(ctx, "deploy", "-l", "40000", "-b", batch)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the server holds part of the upload, then kill.
		waitFor(t, "part of the upload", func() bool { return uploadedBytes(t) > int64(len(big))/4 })
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		cancel()
		waitFor(t, "the session's end", func() bool { return countEnds(e.Audit(t)) > ends })
		wantFile(t, d+"/app.conf", "old config\n")
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			var names []string
			for _, en := range entries {
				names = append(names, en.Name())
			}
			t.Fatalf("run %d: %v left in the directory", run, names)
		}
		if n := uploadedBytes(t); n != 0 {
			t.Fatalf("run %d: an unnamed upload of %d bytes is still open", run, n)
		}
	}
}

// uploadedBytes is the size of the unnamed files (O_TMPFILE) this
// process holds open: uploads in progress.
func uploadedBytes(t *testing.T) int64 {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, fd := range fds {
		p := "/proc/self/fd/" + fd.Name()
		target, err := os.Readlink(p)
		if err != nil || !strings.Contains(target, "/sandbox/deploy/#") {
			continue
		}
		if st, err := os.Stat(p); err == nil {
			n += st.Size()
		}
	}
	return n
}
