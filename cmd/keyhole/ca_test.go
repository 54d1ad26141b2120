package main

import (
	"net"
	"os"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// addrport FILE VAR sets the environment variable VAR to the port of the
// host:port address in FILE (as written by serve --addr-file), so a script
// can hand it to the stock ssh client's -p.
func cmdAddrPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: addrport FILE VAR")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	_, port, err := net.SplitHostPort(strings.TrimSpace(string(b)))
	ts.Check(err)
	ts.Setenv(args[1], port)
}
