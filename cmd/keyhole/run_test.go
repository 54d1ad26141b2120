package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		pos  []string
		e    string
		bad  bool
	}{
		{"flags-first", []string{"-e", "x", "h1", "h2"}, []string{"h1", "h2"}, "x", false},
		{"flags-after", []string{"h1", "-e", "x", "h2"}, []string{"h1", "h2"}, "x", false},
		{"flags-last", []string{"h1", "h2", "-e", "x"}, []string{"h1", "h2"}, "x", false},
		{"double-dash", []string{"-e", "x", "--", "-h1", "-e"}, []string{"-h1", "-e"}, "x", false},
		{"double-dash-after-positional", []string{"h1", "--", "-e"}, []string{"h1", "-e"}, "", false},
		{"unknown-flag", []string{"h1", "--nope"}, nil, "", true},
		{"missing-value", []string{"h1", "-e"}, nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rf runFlags
			fs := newFlagSet("run", runSynopsis, &bytes.Buffer{})
			rf.register(fs)
			pos, err := parseInterleaved(fs, tc.args)
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v", err)
			}
			if !tc.bad && (!slices.Equal(pos, tc.pos) || rf.code != tc.e) {
				t.Errorf("positionals %q, -e %q", pos, rf.code)
			}
		})
	}
}

func TestReadHostsFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          []string
		err           string
	}{
		{"plain", "web01\n# a comment\n\n  logs@web02:2222  # trailing\n", []string{"web01", "logs@web02:2222"}, ""},
		{"two-on-a-line", "web01 web02\n", nil, "one destination a line"},
		{"ini-is-not-a-list", "web01 ansible_port=22\n", nil, "one destination a line"},
		{"ini-group-header", "[web]\nweb01\n", nil, "an inventory's group header"},
		{"ipv6-with-port", "[::1]:2222\n", []string{"[::1]:2222"}, ""},
		{"only-comments", "# nothing\n", nil, "no hosts"},
		{"bad-destination", "-oProxyCommand=x\n", nil, "bad host name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			ts, err := targetSource{hostsFile: p}.targets("logs")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range ts {
				got = append(got, x.Name)
				if x.User == "" {
					t.Errorf("%s: no user", x.Name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("targets %q, want %q", got, tc.want)
			}
		})
	}
}

// openPTY opens a pseudo-terminal and returns its terminal end.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	// Drain the terminal's output so writes never block.
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := m.Read(buf); err != nil {
				return
			}
		}
	}()
	return s
}

// The progress bar is drawn on a terminal only: never on a pipe, a file
// or a buffer.
func TestProgressBarOnTerminalOnly(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if newBar(w, 3) != nil || newBar(f, 3) != nil || newBar(&bytes.Buffer{}, 3) != nil {
		t.Error("a progress bar off a terminal")
	}
	if newBar(openPTY(t), 3) == nil {
		t.Error("no progress bar on a terminal")
	}
}
