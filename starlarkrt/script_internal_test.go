package starlarkrt

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarktest"

	"github.com/keyhole-dev/keyhole/hostops"
)

// fakeHost is an in-memory Host: files under /allowed are readable,
// anything under /denied is refused by policy "no-denied".
type fakeHost struct {
	files map[string]string
}

func (f *fakeHost) check(action, path string) error {
	if !strings.HasPrefix(path, "/") {
		return &hostops.Error{Kind: hostops.KindInvalidArgument, Message: fmt.Sprintf("path must be absolute, got %q", path), Action: action}
	}
	if strings.HasPrefix(path, "/denied") {
		return &hostops.Error{Kind: hostops.KindAccessDenied, Action: action, Resource: path, Policies: []string{"no-denied"},
			Message: fmt.Sprintf(`%s %s denied for User::"t" (policy no-denied)`, action, path)}
	}
	return nil
}

func (f *fakeHost) Read(path string, max int64) ([]byte, error) {
	if err := f.check("read", path); err != nil {
		return nil, err
	}
	c, ok := f.files[path]
	if !ok {
		return nil, &hostops.Error{Kind: hostops.KindNotFound, Action: "read", Resource: path, Message: "read " + path + ": no such file or directory"}
	}
	if max > 0 && int64(len(c)) > max {
		c = c[:max]
	}
	return []byte(c), nil
}

func (f *fakeHost) List(path string) ([]hostops.Entry, error) {
	if err := f.check("list", path); err != nil {
		return nil, err
	}
	var out []hostops.Entry
	for name, c := range f.files {
		if filepath.Dir(name) == path {
			out = append(out, hostops.Entry{Name: filepath.Base(name), Type: "file", Size: int64(len(c))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeHost) Stat(path string) (hostops.Info, error) {
	if err := f.check("stat", path); err != nil {
		return hostops.Info{}, err
	}
	c, ok := f.files[path]
	if !ok {
		return hostops.Info{}, &hostops.Error{Kind: hostops.KindNotFound, Action: "stat", Resource: path, Message: "stat " + path + ": no such file or directory"}
	}
	return hostops.Info{Path: path, Type: "file", Size: int64(len(c)), Mode: fs.FileMode(0o644), ModTime: time.Unix(0, 0)}, nil
}

// assertModule returns go.starlark.net/starlarktest's assert module (eq,
// ne, true, lt, contains, fails) and opts set to report its failures to
// t.
func assertModule(t testing.TB, opts Options) (starlark.Value, Options) {
	t.Helper()
	mod, err := starlarktest.LoadAssertModule()
	if err != nil {
		t.Fatal(err)
	}
	opts.setup = func(th *starlark.Thread) { starlarktest.SetReporter(th, t) }
	return mod["assert"], opts
}

func testHost() *fakeHost {
	return &fakeHost{files: map[string]string{
		"/allowed/a.txt": "alpha\n",
		"/allowed/b.txt": "bravo bravo\n",
		"/denied/secret": "s3cret\n",
	}}
}

// TestScripts runs every testdata/*.star file; each must end with exit 0.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.star")
	if err != nil || len(files) == 0 {
		t.Fatalf("no script tests: %v", err)
	}
	for _, file := range files {
		if realHostScripts[filepath.Base(file)] {
			continue // run against a real Host by its own test
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			assert, opts := assertModule(t, Options{Host: testHost(), Stdout: &out})
			res := run1(context.Background(), file, string(src), opts, starlark.StringDict{"assert": assert})
			if res.Exit != 0 {
				t.Fatalf("exit %d: %v\noutput:\n%s", res.Exit, res.Err, out.String())
			}
		})
	}
}

func TestExitStatuses(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		opts     Options
		wantExit int
		wantKind string
		wantMsg  string
	}{
		{"ok", `print("hi")`, Options{}, 0, "", ""},
		{"syntax", `def f(:`, Options{}, 2, KindSyntaxError, ""},
		{"undefined-name", `print(nope)`, Options{}, 2, KindSyntaxError, "undefined: nope"},
		{"script-error", `fail("boom")`, Options{}, 1, KindScriptError, "boom"},
		{"denied", `fs.read("/denied/secret")`, Options{}, 13, hostops.KindAccessDenied, "policy no-denied"},
		{"not-found", `fs.read("/allowed/none")`, Options{}, 1, hostops.KindNotFound, "no such file"},
		{"bad-argument", `fs.read(1)`, Options{}, 1, hostops.KindInvalidArgument, "fs.read: "},
		{"negative-max-bytes", `fs.read("/allowed/a.txt", max_bytes=-1)`, Options{}, 1, hostops.KindInvalidArgument, "max_bytes"},
		{"steps", `while True: pass`, Options{MaxSteps: 1000}, 124, hostops.KindLimitExceeded, "step limit"},
		{"wall", `while True: pass`, Options{MaxWall: 50 * time.Millisecond, MaxSteps: 1 << 62}, 124, hostops.KindLimitExceeded, "wall-clock"},
		{"output", `for i in range(100): print("0123456789")`, Options{MaxOutput: 100}, 124, hostops.KindLimitExceeded, "output limit"},
		{"recursion-off", "def f(n):\n    return f(n)\nf(1)", Options{}, 1, KindScriptError, "recursi"},
		{"load-off", `load("x", "y")`, Options{}, 2, KindSyntaxError, "load"},
		{"limits-not-caught", `catch(lambda: [1 for i in range(100000)])`, Options{MaxSteps: 1000}, 124, hostops.KindLimitExceeded, "step limit"},
		{"script-errors-not-caught", `catch(lambda: 1 // 0)`, Options{}, 1, KindScriptError, "division by zero"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Host = testHost()
			res := Run(context.Background(), "t.star", tc.src, tc.opts)
			if res.Exit != tc.wantExit {
				t.Fatalf("exit = %d (%v), want %d", res.Exit, res.Err, tc.wantExit)
			}
			if tc.wantKind == "" {
				if res.Err != nil {
					t.Fatalf("err = %v", res.Err)
				}
				return
			}
			if res.Err == nil || res.Err.Kind != tc.wantKind || !strings.Contains(res.Err.Message, tc.wantMsg) {
				t.Fatalf("err = %+v, want kind %s containing %q", res.Err, tc.wantKind, tc.wantMsg)
			}
		})
	}
}

func TestContextCancelStopsScript(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	res := Run(ctx, "t.star", `while True: pass`, Options{MaxSteps: 1 << 62})
	if res.Exit == 0 || res.Err == nil {
		t.Fatalf("script ran on after its session ended: %+v", res)
	}
}
