package hostops_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
)

// cedarHost returns a Host for agent-7 in role logs deciding with the real
// Cedar policies given, auditing to memory.
func cedarHost(t testing.TB, policies ...string) (*hostops.Host, *audit.Memory) {
	t.Helper()
	files := map[string][]byte{}
	for i, p := range policies {
		files[fmt.Sprintf("%02d.cedar", i)] = []byte(p)
	}
	ps, err := authz.LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	return newHost(ps)
}

// permitExec is a policy that lets agent-7 run the program at path.
func permitExec(id, path string) string {
	return fmt.Sprintf(`@id(%q) permit (principal, action == Keyhole::Action::"exec", resource == Keyhole::Command::%q);`, id, path)
}

const permitAllExec = `@id("any-exec") permit (principal, action == Keyhole::Action::"exec", resource);`

// bins is a directory of test programs, all "#!/bin/sh" scripts:
//
//	hello   prints "hello" and its arguments
//	other   prints "other"
//	marker  creates the file <dir>/ran
//	noexec  mode 0644
//	link    -> hello
type bins struct{ dir string }

func newBins(t testing.TB) bins {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := bins{dir: dir}
	mustWrite(t, b.path("hello"), "#!/bin/sh\necho hello \"$@\"\n", 0o755)
	mustWrite(t, b.path("other"), "#!/bin/sh\necho other\n", 0o755)
	mustWrite(t, b.path("marker"), "#!/bin/sh\n: > "+b.path("ran")+"\n", 0o755)
	mustWrite(t, b.path("noexec"), "#!/bin/sh\necho no\n", 0o644)
	if err := os.Symlink(b.path("hello"), b.path("link")); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b bins) path(name string) string { return filepath.Join(b.dir, name) }

// realPath is the canonical path of an existing file.
func realPath(t testing.TB, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func errKind(err error) string {
	var e *hostops.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if err != nil {
		return "not a hostops.Error: " + err.Error()
	}
	return ""
}

func TestExec(t *testing.T) {
	b := newBins(t)
	env := realPath(t, "/usr/bin/env")
	h, mem := cedarHost(t,
		permitExec("hello", b.path("hello")),
		permitExec("env", env),
		permitExec("noexec", b.path("noexec")),
		permitExec("missing", b.path("missing")),
		`@id("dirs") permit (principal, action == Keyhole::Action::"exec", resource) when { resource.path == "/usr/bin" };`,
		`@id("hello-argv") permit (principal, action == Keyhole::Action::"exec", resource) when { context.argv == "`+b.path("other")+` -n \"a b\"" };`,
		`@id("no-evil") forbid (principal, action == Keyhole::Action::"exec", resource) when { context.args.contains("--evil") };`,
	)
	tests := []struct {
		name     string
		argv     []string
		kind     string
		resource string // of the audit line and the error
		decision string
		stdout   string
	}{
		{"allowed-absolute", []string{b.path("hello"), "a", "b c"}, "", b.path("hello"), "allow", "hello a b c\n"},
		{"allowed-bare-name-from-search-path", []string{"env"}, "", env, "allow", strings.Join(hostops.ExecEnv(), "\n") + "\n"},
		{"symlink-authorized-as-target", []string{b.path("link"), "x"}, "", b.path("hello"), "allow", "hello x\n"},
		{"denied-by-default", []string{b.path("other")}, hostops.KindAccessDenied, b.path("other"), "deny", ""},
		{"denied-by-forbid-on-args", []string{b.path("hello"), "--evil"}, hostops.KindAccessDenied, b.path("hello"), "deny", ""},
		{"argv-pinned-exactly", []string{b.path("other"), "-n", "a b"}, "", b.path("other"), "allow", "other\n"},
		{"argv-other-split-denied", []string{b.path("other"), "-n", "a", "b"}, hostops.KindAccessDenied, b.path("other"), "deny", ""},
		{"argv-other-quoting-denied", []string{b.path("other"), "-n", `"a b"`}, hostops.KindAccessDenied, b.path("other"), "deny", ""},
		{"allowed-but-missing", []string{b.path("missing")}, hostops.KindNotFound, b.path("missing"), "allow", ""},
		{"denied-missing-is-denied", []string{b.path("missing2")}, hostops.KindAccessDenied, b.path("missing2"), "deny", ""},
		{"not-executable", []string{b.path("noexec")}, hostops.KindInvalidArgument, b.path("noexec"), "allow", ""},
		{"directory", []string{"/usr/bin"}, hostops.KindInvalidArgument, "/usr/bin", "allow", ""},
		{"dot-slash", []string{"./hello"}, hostops.KindInvalidArgument, "./hello", "deny", ""},
		{"relative-with-slash", []string{"bin/env"}, hostops.KindInvalidArgument, "bin/env", "deny", ""},
		{"dot-dot", []string{".."}, hostops.KindInvalidArgument, "..", "deny", ""},
		{"empty-argv", nil, hostops.KindInvalidArgument, "", "deny", ""},
		{"empty-program", []string{""}, hostops.KindInvalidArgument, "", "deny", ""},
		{"bare-name-not-found", []string{"no-such-program-keyhole"}, hostops.KindNotFound, "no-such-program-keyhole", "deny", ""},
		{"newline-in-argument", []string{b.path("hello"), "a\nb"}, hostops.KindInvalidArgument, b.path("hello"), "deny", ""},
		{"nul-in-argument", []string{b.path("hello"), "a\x00b"}, hostops.KindInvalidArgument, b.path("hello"), "deny", ""},
		{"escape-in-argument", []string{b.path("hello"), "\x1b[2J"}, hostops.KindInvalidArgument, b.path("hello"), "deny", ""},
		{"invalid-utf8", []string{b.path("hello"), "\xff"}, hostops.KindInvalidArgument, b.path("hello"), "deny", ""},
		{"too-many-arguments", append([]string{b.path("hello")}, make([]string, hostops.MaxExecArgs)...), hostops.KindInvalidArgument, b.path("hello"), "deny", ""},
		{"too-long", []string{b.path("hello"), strings.Repeat("x", hostops.MaxExecArgvBytes)}, hostops.KindInvalidArgument, b.path("hello"), "deny", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(mem.Events())
			res, err := h.Exec(context.Background(), tc.argv, hostops.ExecOptions{})
			if got := errKind(err); got != tc.kind {
				t.Fatalf("error = %v, want kind %q", err, tc.kind)
			}
			events := mem.Events()[before:]
			if len(events) != 1 {
				t.Fatalf("got %d audit events, want 1: %+v", len(events), events)
			}
			ev := events[0]
			if ev.Event != audit.Decision || ev.Action != "exec" || ev.Resource != tc.resource || ev.Decision != tc.decision {
				t.Errorf("audit = {%s %s %q %s}, want {decision exec %q %s}", ev.Event, ev.Action, ev.Resource, ev.Decision, tc.resource, tc.decision)
			}
			if tc.kind != "" {
				var e *hostops.Error
				errors.As(err, &e)
				if e.Action != "exec" || e.Resource != tc.resource {
					t.Errorf("error action, resource = %q, %q, want exec, %q", e.Action, e.Resource, tc.resource)
				}
				return
			}
			if res.Exit != 0 || string(res.Stdout) != tc.stdout || len(res.Stderr) != 0 || res.Path != tc.resource {
				t.Errorf("result = exit %d, stdout %q, stderr %q, path %q; want 0, %q, empty, %q",
					res.Exit, res.Stdout, res.Stderr, res.Path, tc.stdout, tc.resource)
			}
		})
	}
}

func TestExecDeniedDoesNotRun(t *testing.T) {
	b := newBins(t)
	h, _ := cedarHost(t, permitExec("hello", b.path("hello")))
	if _, err := h.Exec(context.Background(), []string{b.path("marker")}, hostops.ExecOptions{}); errKind(err) != hostops.KindAccessDenied {
		t.Fatalf("err = %v, want ACCESS_DENIED", err)
	}
	if _, err := os.Stat(b.path("ran")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a denied program ran: %v", err)
	}
}

func TestExecDryRun(t *testing.T) {
	b := newBins(t)
	h, mem := cedarHost(t, permitExec("marker", b.path("marker")))
	h.DryRun = true
	res, err := h.Exec(context.Background(), []string{b.path("marker")}, hostops.ExecOptions{})
	if err != nil || res.Exit != 0 || len(res.Stdout)+len(res.Stderr) != 0 {
		t.Fatalf("dry run = %+v, %v", res, err)
	}
	if _, err := os.Stat(b.path("ran")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a dry run ran the program: %v", err)
	}
	if ev := mem.Events(); len(ev) != 1 || ev[0].Decision != "allow" {
		t.Fatalf("audit = %+v, want one allow", ev)
	}
	if _, err := h.Exec(context.Background(), []string{b.path("other")}, hostops.ExecOptions{}); errKind(err) != hostops.KindAccessDenied {
		t.Fatalf("dry run of a denied program: %v, want ACCESS_DENIED", err)
	}
}

// TestExecEnvironment: nothing of the server's environment reaches the
// program, and neither PATH nor the working directory decides which
// program runs.
func TestExecEnvironment(t *testing.T) {
	evil := t.TempDir()
	for _, name := range []string{"env", "id"} {
		mustWrite(t, filepath.Join(evil, name), "#!/bin/sh\necho evil\n", 0o755)
	}
	t.Setenv("PATH", evil)
	t.Setenv("LD_PRELOAD", filepath.Join(evil, "preload.so"))
	t.Setenv("LD_LIBRARY_PATH", evil)
	t.Setenv("KEYHOLE_CANARY", "canary-s3cret")
	t.Setenv("HOME", evil)
	t.Chdir(evil)
	h, _ := cedarHost(t, permitAllExec)
	res, err := h.Exec(context.Background(), []string{"env"}, hostops.ExecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Stdout), strings.Join(hostops.ExecEnv(), "\n")+"\n"; got != want {
		t.Errorf("the program saw the environment\n%s\nwant exactly\n%s", got, want)
	}
	// ld.so complains on stderr about an LD_PRELOAD object it cannot load.
	if len(res.Stderr) != 0 {
		t.Errorf("stderr = %q, want empty", res.Stderr)
	}
	if res.Path == filepath.Join(evil, "env") {
		t.Errorf("PATH chose the program")
	}
	res, err = h.Exec(context.Background(), []string{"/bin/sh", "-c", "pwd; echo $0"}, hostops.ExecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "/\n/bin/sh\n" {
		t.Errorf("working directory and argv[0] = %q, want \"/\\n/bin/sh\\n\"", got)
	}
	for _, argv := range [][]string{{"./env"}, {"evil/env"}, {filepath.Base(evil) + "/env"}} {
		if _, err := h.Exec(context.Background(), argv, hostops.ExecOptions{}); errKind(err) != hostops.KindInvalidArgument {
			t.Errorf("%q: err = %v, want INVALID_ARGUMENT", argv, err)
		}
	}
}

func TestExecSymlinkToAllowedProgramNamesTarget(t *testing.T) {
	b := newBins(t)
	// A link to hello, with the policy allowing the link's path only:
	// what is authorized is the real program, so it is denied.
	h, _ := cedarHost(t, permitExec("link", b.path("link")))
	_, err := h.Exec(context.Background(), []string{b.path("link")}, hostops.ExecOptions{})
	var e *hostops.Error
	if !errors.As(err, &e) || e.Kind != hostops.KindAccessDenied || e.Resource != b.path("hello") {
		t.Fatalf("err = %v, want ACCESS_DENIED on %s", err, b.path("hello"))
	}
	// A link in an innocent place to a program that is not allowed.
	if err := os.Symlink("/usr/bin/id", b.path("innocent")); err != nil {
		t.Fatal(err)
	}
	h, _ = cedarHost(t, permitExec("innocent", b.path("innocent")))
	if _, err := h.Exec(context.Background(), []string{b.path("innocent")}, hostops.ExecOptions{}); errKind(err) != hostops.KindAccessDenied {
		t.Fatalf("link to /usr/bin/id: err = %v, want ACCESS_DENIED", err)
	}
}

// TestExecSymlinkSwappedAfterAuthorization: the file that runs is the one
// authorized, even when the name is pointed elsewhere in between.
func TestExecSymlinkSwappedAfterAuthorization(t *testing.T) {
	b := newBins(t)
	h, _ := cedarHost(t, permitExec("hello", b.path("hello")))
	swap := func(to string) {
		tmp := b.path("link.tmp")
		os.Remove(tmp)
		if err := os.Symlink(to, tmp); err != nil {
			t.Error(err)
		}
		if err := os.Rename(tmp, b.path("link")); err != nil {
			t.Error(err)
		}
	}
	t.Run("deterministic", func(t *testing.T) {
		hostops.OnExecAuthorized(t, func(string) { swap(b.path("other")) })
		defer swap(b.path("hello"))
		res, err := h.Exec(context.Background(), []string{b.path("link")}, hostops.ExecOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Stdout) != "hello\n" {
			t.Fatalf("ran %q, want the authorized program's \"hello\\n\"", res.Stdout)
		}
	})
	t.Run("race", func(t *testing.T) {
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if i%2 == 0 {
					swap(b.path("other"))
				} else {
					swap(b.path("hello"))
				}
			}
		}()
		ran, denied := 0, 0
		for range 100 {
			res, err := h.Exec(context.Background(), []string{b.path("link")}, hostops.ExecOptions{})
			switch errKind(err) {
			case "":
				ran++
				if string(res.Stdout) != "hello\n" {
					t.Errorf("an allowed run printed %q: not the program authorized", res.Stdout)
				}
			case hostops.KindAccessDenied:
				denied++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		stop.Store(true)
		wg.Wait()
		t.Logf("%d ran, %d denied", ran, denied)
	})
}

// shPolicy allows everything the process-group tests run.
func shHost(t *testing.T) *hostops.Host {
	h, _ := cedarHost(t, permitAllExec)
	return h
}

// gone reports whether pid has exited (it is gone or a zombie nobody
// reaped yet), waiting up to a generous deadline.
func gone(t *testing.T, pid int) bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		// "pid (comm) S ..."; comm may hold spaces, the state follows the last ')'.
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X') {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(data), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never written", path)
	return 0
}

func TestExecCancelKillsGrandchildren(t *testing.T) {
	h := shHost(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pid int
	done := make(chan struct{})
	go func() {
		defer close(done)
		pid = readPid(t, pidfile)
		cancel()
	}()
	_, err := h.Exec(ctx, []string{"/bin/sh", "-c", "sleep 1000 & echo $! > " + pidfile + "; wait"}, hostops.ExecOptions{})
	<-done
	if errKind(err) != hostops.KindLimitExceeded {
		t.Fatalf("err = %v, want LIMIT_EXCEEDED", err)
	}
	if !gone(t, pid) {
		t.Fatalf("grandchild %d still running", pid)
	}
}

func TestExecTimeout(t *testing.T) {
	h := shHost(t)
	_, err := h.Exec(context.Background(), []string{"/bin/sh", "-c", "sleep 1000 & wait"}, hostops.ExecOptions{Timeout: 100 * time.Millisecond})
	if errKind(err) != hostops.KindLimitExceeded || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Fatalf("err = %v, want LIMIT_EXCEEDED timed out", err)
	}
}

// TestExecLeftoverChildrenKilled: a program that exits leaving a child in
// its process group returns at once, and the child is killed.
func TestExecLeftoverChildrenKilled(t *testing.T) {
	h := shHost(t)
	res, err := h.Exec(context.Background(), []string{"/bin/sh", "-c", "sleep 1000 & echo $!"}, hostops.ExecOptions{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
	if err != nil {
		t.Fatalf("stdout %q: %v", res.Stdout, err)
	}
	if !gone(t, pid) {
		t.Fatalf("background child %d still running", pid)
	}
}

func TestExecOutput(t *testing.T) {
	h := shHost(t)
	h.MaxExecOutput = 1000
	tests := []struct {
		name             string
		argv             []string
		stdin            *string
		stdout, stderr   string
		exit             int
		signal           string
		truncated        bool
		stdoutN, stderrN int // lengths, when stdout/stderr are not given
	}{
		{name: "separate-streams", argv: []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, stdout: "out\n", stderr: "err\n", exit: 3},
		{name: "stdout-capped", argv: []string{"/bin/sh", "-c", "head -c 1000000 /dev/zero"}, stdoutN: 1000, truncated: true},
		{name: "stderr-capped", argv: []string{"/bin/sh", "-c", "head -c 1000000 /dev/zero >&2; echo ok"}, stdout: "ok\n", stderrN: 1000, truncated: true},
		{name: "exactly-the-cap", argv: []string{"/bin/sh", "-c", "head -c 1000 /dev/zero"}, stdoutN: 1000},
		{name: "stdin", argv: []string{"cat"}, stdin: ptr("line 1\nline 2\n"), stdout: "line 1\nline 2\n"},
		{name: "stdin-empty", argv: []string{"cat"}, stdin: ptr(""), stdout: ""},
		{name: "stdin-not-read", argv: []string{"true"}, stdin: ptr(strings.Repeat("x", 8<<20)), stdout: ""},
		{name: "no-stdin-is-dev-null", argv: []string{"cat"}, stdout: ""},
		{name: "signal", argv: []string{"/bin/sh", "-c", "kill -SEGV $$"}, exit: -1, signal: "SIGSEGV"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := hostops.ExecOptions{}
			if tc.stdin != nil {
				opts.Stdin, opts.HasStdin = []byte(*tc.stdin), true
			}
			res, err := h.Exec(context.Background(), tc.argv, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Exit != tc.exit || res.Signal != tc.signal || res.Truncated != tc.truncated {
				t.Errorf("exit, signal, truncated = %d, %q, %v, want %d, %q, %v", res.Exit, res.Signal, res.Truncated, tc.exit, tc.signal, tc.truncated)
			}
			if tc.stdoutN > 0 {
				if len(res.Stdout) != tc.stdoutN {
					t.Errorf("stdout has %d bytes, want %d", len(res.Stdout), tc.stdoutN)
				}
			} else if string(res.Stdout) != tc.stdout {
				t.Errorf("stdout = %q, want %q", res.Stdout, tc.stdout)
			}
			if tc.stderrN > 0 {
				if len(res.Stderr) != tc.stderrN {
					t.Errorf("stderr has %d bytes, want %d", len(res.Stderr), tc.stderrN)
				}
			} else if string(res.Stderr) != tc.stderr {
				t.Errorf("stderr = %q, want %q", res.Stderr, tc.stderr)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestExecArgumentsNotAudited: the decision line records the argument
// vector the policy decided on (argv), and only there; no other field
// repeats an argument. A vector refused before the policy was asked
// (control characters) is not recorded at all.
func TestExecArgumentsNotAudited(t *testing.T) {
	b := newBins(t)
	h, mem := cedarHost(t, permitExec("hello", b.path("hello")))
	for _, argv := range [][]string{{b.path("hello"), "--password=canary-s3cret"}, {b.path("other"), "canary-s3cret"}, {b.path("hello"), "canary-s3cret\n"}} {
		h.Exec(context.Background(), argv, hostops.ExecOptions{})
	}
	for i, ev := range mem.Events() {
		if i < 2 && !strings.Contains(ev.Argv, "canary-s3cret") {
			t.Errorf("decision %d has no argv: %+v", i, ev)
		}
		ev.Argv = ""
		if strings.Contains(fmt.Sprintf("%+v", ev), "canary-s3cret") {
			t.Errorf("audit event repeats an argument: %+v", ev)
		}
	}
}

func TestExecNoDescriptorLeak(t *testing.T) {
	b := newBins(t)
	h, _ := cedarHost(t, permitExec("hello", b.path("hello")), permitExec("sh", realPath(t, "/bin/sh")))
	run := func() {
		h.Exec(context.Background(), []string{b.path("hello")}, hostops.ExecOptions{HasStdin: true, Stdin: []byte("x")})
		h.Exec(context.Background(), []string{b.path("other")}, hostops.ExecOptions{})
		h.Exec(context.Background(), []string{b.path("missing")}, hostops.ExecOptions{})
		h.Exec(context.Background(), []string{"/bin/sh", "-c", "sleep 1000"}, hostops.ExecOptions{Timeout: time.Millisecond})
	}
	run()
	before := openFDs(t)
	for range 10 {
		run()
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open before, %d after", before, after)
	}
}

func TestJoinArgv(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"plain", []string{"df", "-h", "/var"}, "df -h /var"},
		{"space", []string{"echo", "a b"}, `echo "a b"`},
		{"empty", []string{"echo", ""}, `echo ""`},
		{"double-quote", []string{"echo", `a"b`}, `echo "a\"b"`},
		{"single-quote", []string{"echo", `it's`}, `echo "it's"`},
		{"backslash", []string{"echo", `a\b`}, `echo "a\\b"`},
		{"unicode-space", []string{"echo", "a\u00a0b"}, "echo \"a\u00a0b\""},
		{"no-args", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hostops.JoinArgv(tc.argv); got != tc.want {
				t.Errorf("JoinArgv(%q) = %s, want %s", tc.argv, got, tc.want)
			}
		})
	}
}

// splitArgv parses what JoinArgv writes; it exists to show the spelling
// can be read back, that is, that JoinArgv is injective.
func splitArgv(s string) ([]string, bool) {
	var out []string
	for i := 0; i < len(s); {
		if len(out) > 0 {
			if s[i] != ' ' {
				return nil, false
			}
			i++
		}
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, false
				}
				c := s[i]
				if c == '"' {
					i++
					break
				}
				if c == '\\' {
					if i+1 >= len(s) {
						return nil, false
					}
					i++
					c = s[i]
				}
				b.WriteByte(c)
				i++
			}
			out = append(out, b.String())
			continue
		}
		j := strings.IndexByte(s[i:], ' ')
		if j < 0 {
			j = len(s) - i
		}
		if j == 0 {
			return nil, false
		}
		out = append(out, s[i:i+j])
		i += j
	}
	return out, true
}

func FuzzJoinArgv(f *testing.F) {
	f.Add("a", "b c", "")
	f.Add(`"`, `\`, `'`)
	f.Add("a\u2028b", " ", `\"`)
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, argv := range [][]string{{a}, {a, b}, {a, b, c}, {a + " " + b}, {a, "", c}} {
			joined := hostops.JoinArgv(argv)
			got, ok := splitArgv(joined)
			if !ok || len(got) != len(argv) {
				t.Fatalf("JoinArgv(%q) = %q reads back as %q (%v)", argv, joined, got, ok)
			}
			for i := range argv {
				if got[i] != argv[i] {
					t.Fatalf("JoinArgv(%q) = %q reads back as %q", argv, joined, got)
				}
			}
		}
	})
}

// TestExecInheritsNoDescriptors: a descriptor this process holds without
// close-on-exec (as one inherited at start would be) does not reach the
// program.
func TestExecInheritsNoDescriptors(t *testing.T) {
	h := shHost(t)
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	leaked, err := unix.Dup(int(f.Fd())) // dup: not close-on-exec
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leaked)
	n := strconv.Itoa(leaked)
	res, err := h.Exec(context.Background(), []string{"/bin/sh", "-c", "readlink /proc/self/fd/" + n + " || echo closed; readlink /proc/self/fd/3"}, hostops.ExecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Stdout), "closed\n"+realPath(t, "/bin/sh")+"\n"; got != want {
		t.Fatalf("the program's descriptors %s and 3 = %q, want %q", n, got, want)
	}
}

// TestExecDenialNamesRoleAndArguments: an exec denial says who, in which
// role, and the argument vector it was decided on, so that the reason is
// visible without the audit log.
func TestExecDenialNamesRoleAndArguments(t *testing.T) {
	b := newBins(t)
	h, _ := cedarHost(t,
		permitExec("hello", b.path("hello")),
		`@id("no-evil") forbid (principal, action == Keyhole::Action::"exec", resource) when { context.args.contains("--evil") };`,
	)
	for _, tc := range []struct {
		name string
		argv []string
		want string
	}{
		{"args", []string{b.path("hello"), "--evil", "a b"},
			`exec ` + b.path("hello") + ` --evil "a b" denied for User::"agent-7" in Role::"logs" (policy no-evil)`},
		{"through-a-link", []string{b.path("link"), "--evil"},
			`exec ` + b.path("hello") + ` (argv ` + b.path("link") + ` --evil) denied for User::"agent-7" in Role::"logs" (policy no-evil)`},
		{"default-deny", []string{b.path("other"), "-x"},
			`exec ` + b.path("other") + ` -x denied for User::"agent-7" in Role::"logs" (no policy permits it)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Exec(context.Background(), tc.argv, hostops.ExecOptions{})
			var e *hostops.Error
			if !errors.As(err, &e) || e.Kind != hostops.KindAccessDenied || e.Message != tc.want {
				t.Fatalf("err = %v\nwant ACCESS_DENIED: %s", err, tc.want)
			}
		})
	}
}
