package worker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/hostops"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/outcome"
)

// limitsStart is a Start message whose policy lets the script read, write
// and create below dir, run /bin/cat and /bin/sh and restart Service "web".
func limitsStart(t *testing.T, dir, script string) *workerproto.Start {
	t.Helper()
	st := start(t, script)
	bin, err := filepath.EvalSymlinks("/bin")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := authz.LoadFiles(map[string][]byte{"p.cedar": []byte(fmt.Sprintf(`
@id("dir") permit (principal, action in [Keyhole::Action::"read", Keyhole::Action::"write", Keyhole::Action::"create"],
	resource in Keyhole::Dir::%q);
@id("bin") permit (principal, action == Keyhole::Action::"exec", resource)
	when { resource.path like "%s/*" };
@id("web") permit (principal, action == Keyhole::Action::"restart", resource == Keyhole::Service::"web");
`, dir, bin))})
	if err != nil {
		t.Fatal(err)
	}
	st.Policies, st.PolicyVersion = ps.Files(), ps.Version()
	return st
}

// limitsDir is a directory holding "in", a file of 1000 bytes.
func limitsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in"), []byte(strings.Repeat("x", 999)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestWorkerReportsBytesMoved(t *testing.T) {
	dir := limitsDir(t)
	script := fmt.Sprintf(`
d = %q
fs.read(d + "/in")                           # 1000 read
fs.lines(d + "/in")                          # 1000 read
fs.write(d + "/out", "y" * 300)              # 300 written
fs.append(d + "/out", "z" * 20)              # 20 written
fs.copy(d + "/in", d + "/copy")              # 1000 read, 1000 written
r = proc.run(["cat"], stdin = "hello")       # 5 written, 5 read
`, dir)
	_, _, res := serve(t, limitsStart(t, dir, script))
	if res.Exit != 0 {
		t.Fatalf("exit %d: %+v", res.Exit, res.Error)
	}
	if res.BytesRead != 3005 || res.BytesWritten != 1325 {
		t.Errorf("bytes read, written = %d, %d, want 3005, 1325", res.BytesRead, res.BytesWritten)
	}
}

func TestWorkerByteBudgets(t *testing.T) {
	cases := []struct {
		name        string
		limits      workerproto.Limits
		script      string
		wantMessage string
		wantFile    string // a file that must not exist afterwards
	}{
		{name: "read", limits: workerproto.Limits{MaxRead: 1500},
			script: `fs.read(d + "/in"); fs.read(d + "/in"); print("unreached")`, wantMessage: "read limit of 1500 bytes"},
		{name: "read-caught-still-ends", limits: workerproto.Limits{MaxRead: 1500},
			script: `fs.read(d + "/in"); v, err = catch(fs.read, d + "/in"); print("unreached")`, wantMessage: "read limit of 1500 bytes"},
		{name: "read-ahead-of-a-succeeding-operation", limits: workerproto.Limits{MaxRead: 1500},
			script: `fs.read(d + "/in"); fs.lines(d + "/in", max_lines = 1)`, wantMessage: "read limit of 1500 bytes"},
		{name: "write", limits: workerproto.Limits{MaxWrite: 500},
			script: `fs.write(d + "/a", "y" * 300); fs.write(d + "/b", "y" * 300)`, wantMessage: "write limit of 500 bytes", wantFile: "b"},
		{name: "write-caught-still-ends", limits: workerproto.Limits{MaxWrite: 500},
			script:      `fs.write(d + "/a", "y" * 300); catch(fs.write, d + "/b", "y" * 300); fs.write(d + "/c", "")`,
			wantMessage: "write limit of 500 bytes", wantFile: "c"},
		{name: "stdin", limits: workerproto.Limits{MaxWrite: 4},
			script: `proc.run(["cat"], stdin = "hello")`, wantMessage: "write limit of 4 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := limitsDir(t)
			st := limitsStart(t, dir, fmt.Sprintf("d = %q\n%s\n", dir, tc.script))
			st.Limits.MaxRead, st.Limits.MaxWrite = tc.limits.MaxRead, tc.limits.MaxWrite
			prints, _, res := serve(t, st)
			if res.Exit != outcome.ExitLimitExceeded || res.Error == nil || res.Error.Kind != hostops.KindLimitExceeded ||
				!strings.Contains(res.Error.Message, tc.wantMessage) {
				t.Fatalf("exit %d, error %+v; want 124 LIMIT_EXCEEDED naming %q", res.Exit, res.Error, tc.wantMessage)
			}
			if len(prints) > 0 {
				t.Errorf("the script went on after its budget was spent: printed %q", prints)
			}
			if tc.wantFile != "" {
				if _, err := os.Stat(filepath.Join(dir, tc.wantFile)); err == nil {
					t.Errorf("%s was written past the budget", tc.wantFile)
				}
			}
		})
	}
}

func TestWorkerServiceManagerAndExecOutput(t *testing.T) {
	dir := limitsDir(t)
	manager := filepath.Join(dir, "manager")
	script := "#!/bin/sh\nfor last in \"$@\"; do :; done\n[ \"$2\" = show ] && { echo \"$last.service\"; exit 0; }\n" +
		"printf '%s\\n' \"$@\" > " + dir + "/argv\n"
	if err := os.WriteFile(manager, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	st := limitsStart(t, dir, `
svc.restart("web")
r = proc.run(["cat", "`+dir+`/in"])
result({"len": len(r.stdout), "truncated": r.truncated})
`)
	st.ServiceManager = []string{manager, "--flag"}
	st.Limits.MaxExecOutput = 10
	_, _, res := serve(t, st)
	if res.Exit != 0 {
		t.Fatalf("exit %d: %+v", res.Exit, res.Error)
	}
	got, err := os.ReadFile(filepath.Join(dir, "argv"))
	if err != nil {
		t.Fatalf("the configured service manager did not run: %v", err)
	}
	if want := "--flag\nrestart\n--\nweb.service\n"; string(got) != want {
		t.Errorf("service manager argv = %q, want %q", got, want)
	}
	if string(res.Value) != `{"len":10,"truncated":true}` {
		t.Errorf("proc.run with MaxExecOutput 10 = %s, want 10 bytes, truncated", res.Value)
	}
}

// TestWorkerTailOfHugeFile: fs.tail of a 10 GiB file without a newline
// (sparse: it reads as zeros) ends at once with LIMIT_EXCEEDED naming the
// line length, well within the wall limit, having read about a line's
// worth, all of it counted.
func TestWorkerTailOfHugeFile(t *testing.T) {
	dir := limitsDir(t)
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(10 << 30); err != nil {
		f.Close()
		t.Skipf("cannot make a sparse file here: %v", err)
	}
	f.Close()
	st := limitsStart(t, dir, fmt.Sprintf("fs.tail(%q)\nprint(\"unreached\")\n", filepath.Join(dir, "sparse")))
	st.Limits.MaxWall = 10 * time.Second
	prints, _, res := serve(t, st)
	if res.Exit != outcome.ExitLimitExceeded || res.Error == nil || !strings.Contains(res.Error.Message, "a line is longer than") {
		t.Fatalf("exit %d, error %+v; want LIMIT_EXCEEDED about the line length", res.Exit, res.Error)
	}
	if len(prints) != 0 {
		t.Errorf("printed %q", prints)
	}
	if res.BytesRead == 0 || res.BytesRead > hostops.MaxLineBytes+128<<10 {
		t.Errorf("bytes read = %d, want about %d", res.BytesRead, hostops.MaxLineBytes)
	}
	if res.Duration > 5*time.Second {
		t.Errorf("took %v", res.Duration)
	}
}
