package sshserver

// fs.cat's bytes on their way to the client (worker.RunOptions.Cat): the
// worker passed the open file to the server, which streams it from the
// file into the channel without it crossing the worker's pipe.

import (
	"encoding/base64"
	"errors"
	"io"
)

// catBuffer is how much of a file one channel write carries: the channel
// cuts it into packets, and fewer, larger reads and writes cost less.
const catBuffer = 256 << 10

// copyFile streams r into the channel (plain protocol: the bytes as they
// are, after the script's earlier prints).
func copyFile(w io.Writer, r io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, make([]byte, catBuffer))
}

// catChunk is how many bytes of a file one structured cat event carries
// (64 KiB once in base64).
const catChunk = 48 << 10

// Structured events of fs.cat: the file's bytes in order, base64 in
// "data", then one event with "done" and the count.
type (
	catEvent struct {
		Cat catBody `json:"cat"`
	}
	catBody struct {
		Path  string `json:"path"`
		Data  string `json:"data,omitempty"`
		Bytes *int64 `json:"bytes,omitempty"`
		Done  bool   `json:"done,omitempty"`
	}
)

// catEvents streams r as structured cat events and returns the bytes sent.
func catEvents(jw *jsonLines, r io.Reader, path string) (int64, error) {
	buf := make([]byte, catChunk)
	var sent int64
	for {
		m, err := io.ReadFull(r, buf)
		if m > 0 {
			if werr := jw.write(catEvent{Cat: catBody{Path: path, Data: base64.StdEncoding.EncodeToString(buf[:m])}}); werr != nil {
				return sent, werr
			}
			sent += int64(m)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return sent, err
		}
	}
	n := sent
	return sent, jw.write(catEvent{Cat: catBody{Path: path, Bytes: &n, Done: true}})
}
