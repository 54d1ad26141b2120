package sshserver_test

import (
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

// FuzzSftpPackets feeds arbitrary packet streams to pkg/sftp's request
// server, the part of an sftp session that runs outside keyhole's
// recover boundary (its packet workers), over in-memory handlers. A panic
// there would end the whole server, so the fuzzer looks for one:
//
//	go test -run '^$' -fuzz=FuzzSftpPackets -fuzztime=60s ./sshserver
func FuzzSftpPackets(f *testing.F) {
	init := sftpPacket(fxpInit, u32(3))
	f.Add(init)
	f.Add(append(append([]byte{}, init...), sftpPacket(fxpOpen, u32(1), sstr("/x"), u32(fxRead), u32(0))...))
	f.Add(append(append([]byte{}, init...), 0xff, 0xff, 0xff, 0xff))
	for typ := byte(3); typ <= 20; typ++ {
		f.Add(append(append([]byte{}, init...), sftpPacket(typ, u32(1), sstr("/x"), u32(0xffffffff), u32(0xffffffff))...))
	}
	f.Add(append(append([]byte{}, init...), sftpPacket(200, u32(1), sstr("posix-rename@openssh.com"), sstr("/a"))...))
	f.Add(append(append([]byte{}, init...), sftpPacket(200, u32(1), sstr("statvfs@openssh.com"))...))
	f.Fuzz(func(t *testing.T, stream []byte) {
		// Lengths over what pkg/sftp accepts are refused before anything
		// is allocated; keep the stream's own lengths small to go deeper.
		if len(stream) >= 4 && binary.BigEndian.Uint32(stream) > 1<<20 {
			return
		}
		cr, cw := io.Pipe()
		srv := sftp.NewRequestServer(struct {
			io.Reader
			io.Writer
			io.Closer
		}{cr, io.Discard, cr}, sftp.InMemHandler())
		done := make(chan struct{})
		go func() { _ = srv.Serve(); close(done) }()
		go func() {
			_, _ = cw.Write(stream)
			_ = cw.Close()
		}()
		select {
		case <-done:
			_ = cr.Close() // it may stop before the end of the stream
		case <-time.After(5 * time.Second):
			t.Fatal("the server did not end at the end of its stream")
		}
	})
}
