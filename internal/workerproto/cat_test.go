package workerproto_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

// TestFDSocket: one descriptor per message passes; a message without one,
// a socket with nothing queued and a message with two are refused, and
// only readable regular files pass CheckCatFile.
func TestFDSocket(t *testing.T) {
	srv, wrk, err := workerproto.NewFDSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	defer wrk.Close()
	if !workerproto.IsFDSocket(int(wrk.Fd())) {
		t.Error("IsFDSocket of a descriptor socket is false")
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if workerproto.IsFDSocket(int(f.Fd())) {
		t.Error("IsFDSocket of a file is true")
	}

	if _, err := workerproto.RecvFD(srv); !errors.Is(err, workerproto.ErrNoFD) {
		t.Errorf("nothing queued: %v, want ErrNoFD", err)
	}
	if err := workerproto.SendFD(wrk, f); err != nil {
		t.Fatal(err)
	}
	got, err := workerproto.RecvFD(srv)
	if err != nil {
		t.Fatal(err)
	}
	if err := workerproto.CheckCatFile(got); err != nil {
		t.Errorf("a file open for reading: %v", err)
	}
	got.Close()

	if _, err := wrk.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	if _, err := workerproto.RecvFD(srv); err == nil {
		t.Error("a message without a descriptor was taken")
	}
	if err := unix.Sendmsg(int(wrk.Fd()), []byte{0}, unix.UnixRights(int(f.Fd()), int(f.Fd())), nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := workerproto.RecvFD(srv); err == nil {
		t.Error("a message with two descriptors was taken")
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	wo, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Close()
	opath, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	op := os.NewFile(uintptr(opath), p)
	defer op.Close()
	for name, bad := range map[string]*os.File{"pipe": r, "write-only": wo, "o-path": op} {
		if err := workerproto.CheckCatFile(bad); err == nil {
			t.Errorf("%s passes CheckCatFile", name)
		}
	}
}
