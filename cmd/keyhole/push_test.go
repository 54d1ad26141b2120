package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/client"
)

func TestPushPlan(t *testing.T) {
	for _, tc := range []struct {
		srcs []string
		dest string
		want []string
		err  string
	}{
		{[]string{"a.conf"}, "/etc/app/app.conf", []string{"/etc/app/app.conf"}, ""},
		{[]string{"dir/a.conf"}, "/etc/app/", []string{"/etc/app/a.conf"}, ""},
		{[]string{"a.conf", "x/b.conf"}, "/etc/app", []string{"/etc/app/a.conf", "/etc/app/b.conf"}, ""},
		{[]string{"a.conf"}, "/", []string{"/a.conf"}, ""},
		{[]string{"a.conf"}, "etc/app/", nil, "want an absolute path"},
		{[]string{"a.conf"}, "/etc/../app/", nil, "want a clean path"},
		{[]string{"a.conf"}, "/etc//app", nil, "want a clean path"},
		{[]string{"a.conf"}, "/etc/./app", nil, "want a clean path"},
		{[]string{"a/x.conf", "b/x.conf"}, "/etc/", nil, "both go to /etc/x.conf"},
		{[]string{"..", "a"}, "/etc/", nil, "names no file"},
	} {
		got, err := pushPlan(tc.srcs, tc.dest)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v %s: %v, want %q", tc.srcs, tc.dest, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%v %s: %v %v, want %v", tc.srcs, tc.dest, got, err, tc.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for s, want := range map[string]int{"644": 0o644, "0644": 0o644, "0o640": 0o640, "0": 0, "777": 0o777,
		"1777": -1, "999": -1, "": -1, "0o": -1, "rw": -1, "-1": -1, "+7": -1, "0x1ff": -1} {
		m, err := parseMode(s)
		if (err != nil) != (want < 0) || (err == nil && int(m) != want) {
			t.Errorf("%q: %#o %v", s, m, err)
		}
	}
}

// On a terminal, the bar over bytes is drawn with the hosts done and
// failed; off one, nothing.
func TestPushProgressBar(t *testing.T) {
	var b bytes.Buffer
	if newBytesBar(&b, 10) != nil {
		t.Error("a bar off a terminal")
	}
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer m.Close()
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
	var mu sync.Mutex
	var drawn strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := m.Read(buf)
			mu.Lock()
			drawn.Write(buf[:k])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	local := filepath.Join(dir, "a.conf")
	os.WriteFile(local, []byte("0123456789"), 0o644)
	pf, err := client.NewPushFile(local, "/srv/a.conf")
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	blk, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id")
	os.WriteFile(key, pem.EncodeToMemory(blk), 0o600)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, nil, 0o644)
	d, err := client.NewDialer(client.Config{KnownHosts: []string{kh}, NoAgent: true, Identities: []string{key}, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	targets := []client.Target{{Name: "a", Addr: "127.0.0.1", Port: port, User: "x"}, {Name: "b", Addr: "127.0.0.1", Port: port, User: "x"}}
	var out bytes.Buffer
	err = pushFleet(context.Background(), d, targets, []client.PushFile{pf}, client.PushOptions{}, &pushFlags{parallel: 1}, pf.Size, &out, s)
	if es, ok := err.(exitStatus); !ok || int(es) != client.ExitSomeFailed {
		t.Errorf("err %v", err)
	}
	s.Close() // the master's reads end once the terminal end is closed and drained
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end")
	}
	mu.Lock()
	got := drawn.String()
	mu.Unlock()
	for _, want := range []string{"hosts 2/2, failed 2", "100%", "keyhole: 2 hosts: 0 changed, 0 unchanged, 2 unreachable"} {
		if !strings.Contains(got, want) {
			t.Errorf("the terminal shows no %q:\n%q", want, got)
		}
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		t.Errorf("stdout: %q", sc.Text())
	}
}
