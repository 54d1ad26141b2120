package workerproto_test

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapRaw maps a ring file as bytes, to write what a hostile worker could.
func mapRaw(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}
