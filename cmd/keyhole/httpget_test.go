package main

import (
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// httpget ADDRFILE PATH fetches http://ADDR/PATH, ADDR read from
// ADDRFILE, and writes the body to stdout. It fails unless the status is
// 200 OK; "! httpget" fails if it is, and writes the status to stdout.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: httpget ADDRFILE PATH")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + strings.TrimSpace(string(b)) + args[1])
	ts.Check(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ts.Check(err)
	ok := resp.StatusCode == http.StatusOK
	switch {
	case ok && neg:
		ts.Fatalf("GET %s: 200 OK, want an error status", args[1])
	case !ok && !neg:
		ts.Fatalf("GET %s: %s", args[1], resp.Status)
	case neg:
		_, _ = io.WriteString(ts.Stdout(), resp.Status+"\n")
	default:
		_, _ = ts.Stdout().Write(body)
	}
}
