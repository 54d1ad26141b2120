package bench_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// bulkEnv, set to anything, runs BenchmarkBulkReadVsOpenSSH; unset, it
// skips, so a plain "go test -bench ." does not move gigabytes.
const bulkEnv = "KEYHOLE_BULK"

// bulkSize is the file a bulk read moves: 100 MiB.
const bulkSize = 100 << 20

// BenchmarkBulkReadVsOpenSSH compares a script's bulk read of a 100 MiB
// file to stdout (fs.cat, the bytes streamed by the server from the
// descriptor the worker passed) with "ssh host cat" on OpenSSH's sshd,
// both through the stock ssh client writing to a file, checked byte for
// byte (length and SHA-256). The command:
//
//	KEYHOLE_BULK=1 go test -run '^$' -bench BulkReadVsOpenSSH -benchtime 10x ./bench/
func BenchmarkBulkReadVsOpenSSH(b *testing.B) {
	if os.Getenv(bulkEnv) == "" {
		b.Skip("set " + bulkEnv + "=1 to move 100 MiB per run")
	}
	p := startPair(b, sshserver.Limits{MaxOutput: 2 * bulkSize})
	data := make([]byte, bulkSize)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < len(data); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	path := filepath.Join(p.kh.Sandbox, "bulk.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	same := func(out string) error {
		if len(out) != bulkSize {
			return fmt.Errorf("output of %d bytes, want %d", len(out), bulkSize)
		}
		if got := sha256.Sum256([]byte(out)); !bytes.Equal(got[:], sum[:]) {
			return fmt.Errorf("output differs from the file")
		}
		return nil
	}
	// KEYHOLE_BULK_CIPHER, when set, makes the client ask both servers
	// for that cipher (ssh -c) instead of its default.
	var extra []string
	if c := os.Getenv(bulkCipherEnv); c != "" {
		extra = []string{"-c", c}
	}
	kh := side{cmd: func(ctx context.Context) *exec.Cmd {
		return testenv.SSHCommand(ctx, p.kh.KnownHosts, p.kh.Addr, "logs", p.kh.UserKey, p.kh.UserCert,
			append(slices.Clone(extra), fmt.Sprintf(`fs.cat(%q)`, path))...)
	}, check: same}
	ossh := side{cmd: func(ctx context.Context) *exec.Cmd {
		return testenv.SSHCommand(ctx, p.sshd.KnownHosts, p.sshd.Addr, p.login, p.sshdKey, p.sshdCrt,
			append(slices.Clone(extra), "cat "+path)...)
	}, check: same}
	b.Run("setup", func(b *testing.B) {
		compare(b, p.keyhole(`print(1)`, func(out string) error {
			if out != "1\n" {
				return fmt.Errorf("output %q", out)
			}
			return nil
		}), p.openssh("true", func(string) error { return nil }))
	})
	b.Run("cat-100MiB", func(b *testing.B) { compare(b, kh, ossh) })
}

// bulkCipherEnv names a cipher the bulk read's client asks for.
const bulkCipherEnv = "KEYHOLE_BULK_CIPHER"
