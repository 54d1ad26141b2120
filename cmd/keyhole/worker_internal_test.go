package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWorkerAtRefusesWhatCannotRun(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "exe")
	if err := os.WriteFile(exe, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "gone"), "no such file"},
		{"directory", dir, "not an executable file"},
		{"not executable", plain, "not an executable file"},
		{"executable", exe, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := workerAt(tc.path)
			if tc.want == "" {
				if err != nil || cmd == nil {
					t.Fatalf("workerAt(%s) = %v, %v; want a command", tc.path, cmd != nil, err)
				}
				if c := cmd(); c.Path != tc.path || strings.Join(c.Args, " ") != "keyhole worker" {
					t.Fatalf("command = %s %q", c.Path, c.Args)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("workerAt(%s) error = %v, want %q", tc.path, err, tc.want)
			}
		})
	}
}
