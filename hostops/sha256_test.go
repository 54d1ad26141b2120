package hostops_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
)

func hexSum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Sha256 is pinned, authorized and refused exactly as Read: the same
// cases, the same single decision line, the hash of what Read returns.
func TestSha256(t *testing.T) {
	t.Parallel()
	runSha256Cases(t, true)
}

// TestSha256WithoutOpenat2 runs the same cases as on a kernel without
// openat2. It must not run in parallel: it changes how the package pins.
func TestSha256WithoutOpenat2(t *testing.T) {
	hostops.WithoutOpenat2(t)
	runSha256Cases(t, false)
}

func runSha256Cases(t *testing.T, parallel bool) {
	s := newSandbox(t)
	for _, tc := range readCases(s, hostops.HaveOpenat2()) {
		t.Run(tc.name, func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			h, mem := newHost(s.policy("/dev/null", "/proc"))
			var got string
			expect(t, mem, "read", func() (err error) {
				got, err = h.Sha256(context.Background(), tc.path)
				return err
			}, tc.want)
			if tc.kind == "" && got != hexSum([]byte(tc.data)) {
				t.Errorf("sha256 = %q, want that of %q", got, tc.data)
			}
			if tc.kind != "" && got != "" {
				t.Errorf("got hash %q with an error", got)
			}
		})
	}
}

func TestSha256Contents(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	big := make([]byte, 3<<20+17)
	rand.Read(big)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", []byte("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		// Streamed: larger than the host's read cap set below, and than
		// one buffer.
		{"larger-than-read-cap", big, hexSum(big)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := s.path("allowed/" + tc.name + ".bin")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			h, mem := newHost(s.policy())
			h.MaxReadBytes = 1 << 10
			got, err := h.Sha256(context.Background(), p)
			if err != nil || got != tc.want {
				t.Fatalf("Sha256 = %q, %v, want %q", got, err, tc.want)
			}
			if n := len(mem.Events()); n != 1 {
				t.Errorf("%d audit events, want 1", n)
			}
		})
	}
}

// swapDecider swaps what a path names while the policy is asked: after
// the object is pinned, before anything is read.
type swapDecider struct {
	hostops.Decider
	swap func() error
	err  error
}

func (d *swapDecider) Decide(r authz.Request) authz.Decision {
	if d.swap != nil {
		d.err = d.swap()
		d.swap = nil
	}
	return d.Decider.Decide(r)
}

// A name swapped after the decision does not change what is hashed: the
// pinned object is, never the secret the name leads to afterwards.
func TestSha256HashesThePinnedFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		path func(s *sandbox) string
		swap func(s *sandbox) error
	}{
		{"symlink-retargeted", func(s *sandbox) string { return s.path("allowed/link-public") }, func(s *sandbox) error {
			tmp := s.path("allowed/.link")
			if err := os.Symlink(s.path("forbidden/secret"), tmp); err != nil {
				return err
			}
			return os.Rename(tmp, s.path("allowed/link-public"))
		}},
		{"file-replaced", func(s *sandbox) string { return s.path("allowed/public.txt") }, func(s *sandbox) error {
			tmp := s.path("allowed/.new")
			if err := os.WriteFile(tmp, []byte("replaced"), 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, s.path("allowed/public.txt"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			d := &swapDecider{Decider: s.policy(), swap: func() error { return tc.swap(s) }}
			h, mem := newHost(d)
			got, err := h.Sha256(context.Background(), tc.path(s))
			if d.err != nil {
				t.Fatal(d.err)
			}
			if d.swap != nil {
				t.Fatal("the policy was not asked")
			}
			if err != nil || got != hexSum([]byte("public data\n")) {
				t.Fatalf("Sha256 = %q, %v, want the hash of the pinned public.txt", got, err)
			}
			if ev := mem.Events(); len(ev) != 1 || ev[0].Resource != s.path("allowed/public.txt") || ev[0].Decision != "allow" {
				t.Errorf("audit events %+v, want one allow of public.txt", ev)
			}
		})
	}
}

// A cancelled script stops hashing with LIMIT_EXCEEDED; the decision was
// written.
func TestSha256Cancelled(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	h, mem := newHost(s.policy())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := h.Sha256(ctx, s.path("allowed/public.txt"))
	var e *hostops.Error
	if !errors.As(err, &e) || e.Kind != hostops.KindLimitExceeded || !strings.Contains(e.Message, "stopped") || got != "" {
		t.Fatalf("Sha256 = %q, %v, want LIMIT_EXCEEDED stopped", got, err)
	}
	if n := len(mem.Events()); n != 1 {
		t.Errorf("%d audit events, want 1", n)
	}
}
