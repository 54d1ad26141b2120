package authz_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/authz"
)

// mustLoad loads policies, one file each, named 00.cedar, 01.cedar, ….
func mustLoad(t testing.TB, policies ...string) *authz.PolicySet {
	t.Helper()
	ps, err := authz.LoadFiles(files(policies...))
	if err != nil {
		t.Fatalf("LoadFiles: %v", err)
	}
	return ps
}

// files names policies 00.cedar, 01.cedar, … for LoadFiles.
func files(policies ...string) map[string][]byte {
	m := make(map[string][]byte, len(policies))
	for i, p := range policies {
		m[fmt.Sprintf("%02d.cedar", i)] = []byte(p)
	}
	return m
}

// readReq is agent-7, acting in role logs, reading path.
func readReq(path string) authz.Request {
	return authz.Request{
		Principal: authz.Principal{
			UserID:      "agent-7",
			Role:        "logs",
			Principals:  []string{"logs", "deploy"},
			Serial:      42,
			Fingerprint: "SHA256:Zm9vYmFy",
			Auth:        "certificate",
		},
		Action:   "read",
		Resource: authz.Resource{Kind: authz.KindFile, Path: path, Exists: true},
		Context: authz.Context{
			SourceIP:     netip.MustParseAddr("10.1.2.3"),
			Now:          time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
			SessionID:    "s-0001",
			ScriptSHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			Transport:    "script",
		},
	}
}

func int64p(v int64) *int64 { return &v }
