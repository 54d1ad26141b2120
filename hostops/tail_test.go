package hostops_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/hostops"
)

// sparseFile makes a file of size bytes with no data blocks: it reads as
// zeros, a single line without a newline.
func sparseFile(t testing.TB, dir string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Skipf("cannot make a %d-byte sparse file here: %v", size, err)
	}
	return p
}

// TestTailHugeFileWithoutNewlines: the tail of a 10 GiB file that holds
// no newline ends at once, after about MaxLineBytes, with LIMIT_EXCEEDED
// naming the line length (it used to rescan what it had read at every
// step and ran past the script's wall limit); the bytes it read are
// charged to the script's budget, and a smaller budget stops it sooner.
func TestTailHugeFileWithoutNewlines(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	p := sparseFile(t, s.allowed, 10<<30)
	for _, tc := range []struct {
		name    string
		maxRead int64 // the script's budget; 0: none
		msg     string
		charged int64 // most bytes charged
	}{
		{"line-cap", 0, "a line is longer than " + strconv.Itoa(hostops.MaxLineBytes) + " bytes", hostops.MaxLineBytes + 128<<10},
		{"read-budget", 100 << 10, "read limit of 102400 bytes", 100<<10 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHost(s.policy())
			h.MaxReadBytes = 1 << 40 // no per-call cap in the way: only the line cap or the budget stop it
			h.Counters = &hostops.Counters{MaxRead: tc.maxRead}
			start := time.Now()
			_, err := h.Tail(context.Background(), p, 10)
			took := time.Since(start)
			if !isKind(err, hostops.KindLimitExceeded) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want LIMIT_EXCEEDED: %s", err, tc.msg)
			}
			if got := h.Counters.Read(); got == 0 || got > tc.charged {
				t.Errorf("charged %d bytes read, want 1 to %d", got, tc.charged)
			}
			// Generous for a loaded machine: the old code took minutes.
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

// TestTailStopsWhenCancelled: a cancelled script's tail stops before it
// reads, with LIMIT_EXCEEDED.
func TestTailStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	p := filepath.Join(s.allowed, "lines")
	mustWrite(t, p, strings.Repeat("line\n", 100_000), 0o644)
	h, _ := newHost(s.policy())
	h.Counters = &hostops.Counters{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.Tail(ctx, p, 50_000)
	if !isKind(err, hostops.KindLimitExceeded) || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want LIMIT_EXCEEDED naming the cancellation", err)
	}
	if h.Counters.Read() != 0 {
		t.Errorf("read %d bytes after the cancellation", h.Counters.Read())
	}
	// Not cancelled, the same call works and reads no more than the lines.
	got, err := h.Tail(context.Background(), p, 50_000)
	if err != nil || len(got) != 50_000 || got[0] != "line" {
		t.Fatalf("tail = %d lines, %v", len(got), err)
	}
	if r := h.Counters.Read(); r < 250_000 || r > 250_000+64<<10 {
		t.Errorf("read %d bytes for 250000 bytes of lines", r)
	}
}

// BenchmarkTail: the cost of a tail is linear in what it reads. "whole-N"
// asks for every line of an N MiB file of 100-byte lines (the cost should
// grow as N); "no-newline-N" is an N MiB file without a newline (the cost
// should not grow at all: it stops after MaxLineBytes).
func BenchmarkTail(b *testing.B) {
	s := newSandbox(b)
	for _, mib := range []int{8, 32} {
		line := strings.Repeat("x", 99) + "\n"
		p := filepath.Join(s.allowed, "lines"+strconv.Itoa(mib))
		mustWrite(b, p, strings.Repeat(line, mib<<20/100), 0o644)
		b.Run("whole-"+strconv.Itoa(mib)+"MiB", func(b *testing.B) {
			h, _ := newHost(s.policy())
			h.MaxReadBytes = 64 << 20
			b.SetBytes(int64(mib << 20))
			for range b.N {
				if _, err := h.Tail(context.Background(), p, 1<<30); err != nil {
					b.Fatal(err)
				}
			}
		})
		flat := filepath.Join(s.allowed, "flat"+strconv.Itoa(mib))
		mustWrite(b, flat, strings.Repeat("x", mib<<20), 0o644)
		b.Run("no-newline-"+strconv.Itoa(mib)+"MiB", func(b *testing.B) {
			h, _ := newHost(s.policy())
			h.MaxReadBytes = 64 << 20
			for range b.N {
				if _, err := h.Tail(context.Background(), flat, 10); !isKind(err, hostops.KindLimitExceeded) {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTailMatchesLines: across chunk boundaries, with and without a final
// newline, with empty lines and for every n, Tail returns the last n of
// the lines Lines returns.
func TestTailMatchesLines(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	h, _ := newHost(s.policy())
	const chunk = 64 << 10
	rng := rand.New(rand.NewPCG(1, 2))
	for i, size := range []int{1, 2, chunk - 1, chunk, chunk + 1, 2*chunk + 7, 5 * chunk} {
		for _, density := range []int{2, 50, chunk} { // one newline in about this many bytes
			b := make([]byte, size)
			for j := range b {
				b[j] = 'a' + byte(j%26)
				if rng.IntN(density) == 0 {
					b[j] = '\n'
				}
			}
			p := filepath.Join(s.allowed, "f"+strconv.Itoa(i)+"-"+strconv.Itoa(density))
			mustWrite(t, p, string(b), 0o644)
			all, err := h.Lines(p, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 2, 3, 10, len(all) - 1, len(all), len(all) + 1} {
				if n <= 0 {
					continue
				}
				got, err := h.Tail(context.Background(), p, n)
				want := all[max(len(all)-n, 0):]
				if err != nil || !slices.Equal(got, want) {
					t.Fatalf("size %d, density %d, n %d: tail = %d lines, %v; want the last %d of %d lines",
						size, density, n, len(got), err, len(want), len(all))
				}
			}
		}
	}
}
