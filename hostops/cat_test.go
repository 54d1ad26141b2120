package hostops_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/hostops"
)

// sender is a hostops.FileSender that copies what it is given into a
// buffer, after running before (with the file, before any byte is read).
type sender struct {
	buf    bytes.Buffer
	before func(f *os.File)
	err    error // returned after the copy, if set
	asked  int64
}

func (s *sender) SendFile(f *os.File, _ string, n int64) (int64, error) {
	s.asked = n
	if s.before != nil {
		s.before(f)
	}
	m, err := io.Copy(&s.buf, io.NewSectionReader(f, 0, n))
	if err != nil {
		return m, err
	}
	return m, s.err
}

// TestCatPinnedAndAuthorized: fs.cat reads what was pinned and authorized
// under the same rules as Read: one decision, symlinks followed to what
// they name, the same refusals.
func TestCatPinnedAndAuthorized(t *testing.T) {
	s := newSandbox(t)
	h, mem := newHost(s.policy("/dev/null", "/proc"))
	for _, tc := range readCases(s, hostops.HaveOpenat2()) {
		t.Run(tc.name, func(t *testing.T) {
			var out sender
			var n int64
			expect(t, mem, "read", func() error {
				var err error
				n, err = h.Cat(tc.path, &out)
				return err
			}, tc.want)
			if tc.want.kind == "" && (out.buf.String() != tc.data || n != int64(len(tc.data))) {
				t.Errorf("sent %q (%d), want %q", out.buf.String(), n, tc.data)
			}
			if tc.want.kind != "" && out.buf.Len() != 0 {
				t.Errorf("sent %q on error", out.buf.String())
			}
		})
	}
}

// TestCatSwappedAfterPin: a symlink swapped to a forbidden file after the
// pin, before a byte is read, changes nothing: the pinned file is sent.
func TestCatSwappedAfterPin(t *testing.T) {
	s := newSandbox(t)
	h, _ := newHost(s.policy())
	link := s.path("allowed/swap")
	if err := os.Symlink("public.txt", link); err != nil {
		t.Fatal(err)
	}
	out := sender{before: func(*os.File) {
		if err := os.Remove(link); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(s.path("forbidden/secret"), link); err != nil {
			t.Fatal(err)
		}
	}}
	if _, err := h.Cat(link, &out); err != nil {
		t.Fatal(err)
	}
	if out.buf.String() != "public data\n" {
		t.Errorf("sent %q, want the pinned file", out.buf.String())
	}
}

// TestCatBounds: at most the size the policy saw is asked for, and never
// past the read budget, which ends with LIMIT_EXCEEDED once spent; bytes
// sent are charged as read.
func TestCatBounds(t *testing.T) {
	s := newSandbox(t)
	p := s.path("allowed/public.txt") // 12 bytes
	t.Run("grown-after-pin", func(t *testing.T) {
		h, _ := newHost(s.policy())
		c := &hostops.Counters{}
		h.Counters = c
		g := s.path("allowed/grows.txt")
		mustWrite(t, g, "0123456789", 0o644)
		out := sender{before: func(*os.File) {
			f, err := os.OpenFile(g, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, _ = f.WriteString("more that was not authorized")
		}}
		n, err := h.Cat(g, &out)
		if err != nil || n != 10 || out.asked != 10 || out.buf.String() != "0123456789" || c.Read() != 10 {
			t.Errorf("n %d err %v asked %d sent %q read %d", n, err, out.asked, out.buf.String(), c.Read())
		}
	})
	t.Run("shrunk-after-pin", func(t *testing.T) {
		h, _ := newHost(s.policy())
		g := s.path("allowed/shrinks.txt")
		mustWrite(t, g, "0123456789", 0o644)
		out := sender{before: func(*os.File) {
			if err := os.Truncate(g, 4); err != nil {
				t.Fatal(err)
			}
		}}
		n, err := h.Cat(g, &out)
		if err != nil || n != 4 || out.buf.String() != "0123" {
			t.Errorf("n %d err %v sent %q", n, err, out.buf.String())
		}
	})
	for _, tc := range []struct {
		name      string
		maxRead   int64
		readFirst bool
		wantSent  string
		wantErr   string
	}{
		{name: "no-budget", maxRead: 0, wantSent: "public data\n"},
		{name: "budget-larger", maxRead: 100, wantSent: "public data\n"},
		{name: "budget-exact", maxRead: 12, wantSent: "public data\n"},
		{name: "budget-short", maxRead: 5, wantSent: "publi", wantErr: "read limit of 5 bytes"},
		{name: "budget-spent-by-a-read", maxRead: 14, readFirst: true, wantSent: "pu", wantErr: "read limit of 14 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHost(s.policy())
			c := &hostops.Counters{MaxRead: tc.maxRead}
			h.Counters = c
			if tc.readFirst {
				if _, err := h.Read(p, 0); err != nil {
					t.Fatal(err)
				}
			}
			var out sender
			n, err := h.Cat(p, &out)
			if out.buf.String() != tc.wantSent || n != int64(len(tc.wantSent)) {
				t.Errorf("sent %q (%d), want %q", out.buf.String(), n, tc.wantSent)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (errKind(err) != hostops.KindLimitExceeded || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
			if tc.maxRead > 0 && c.Read() > tc.maxRead {
				t.Errorf("charged %d bytes, past the budget of %d", c.Read(), tc.maxRead)
			}
			if tc.wantErr != "" && c.Exceeded() == nil {
				t.Error("the read budget is not marked exceeded")
			}
		})
	}
	t.Run("sender-error", func(t *testing.T) {
		h, _ := newHost(s.policy())
		c := &hostops.Counters{}
		h.Counters = c
		_, err := h.Cat(p, &sender{err: errors.New("client went away")})
		if errKind(err) != hostops.KindIOError || !strings.Contains(err.Error(), "client went away") || c.Read() != 12 {
			t.Errorf("err %v read %d", err, c.Read())
		}
		lim := &hostops.Error{Kind: hostops.KindLimitExceeded, Message: "output limit of 3 bytes exceeded"}
		if _, err := h.Cat(p, &sender{err: lim}); err != lim {
			t.Errorf("err %v, want the sender's own", err)
		}
	})
}

// TestReadTooLargeSaysCat: a file over the host's read cap is refused with
// a message that points at fs.cat.
func TestReadTooLargeSaysCat(t *testing.T) {
	s := newSandbox(t)
	h, _ := newHost(s.policy())
	h.MaxReadBytes = 4
	_, err := h.Read(s.path("allowed/public.txt"), 0)
	if errKind(err) != hostops.KindLimitExceeded || !strings.Contains(err.Error(), "larger than the read limit of 4 bytes; fs.cat sends") {
		t.Errorf("err %v", err)
	}
	var out sender
	if _, err := h.Cat(s.path("allowed/public.txt"), &out); err != nil || out.buf.String() != "public data\n" {
		t.Errorf("cat past the per-file cap: %v %q", err, out.buf.String())
	}
}
