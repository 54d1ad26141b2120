package sshserver_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/sshserver"
	"github.com/keyhole-dev/keyhole/worker"
)

// catPolicy lets role logs read the sandbox's logs directory, two objects
// fs.cat refuses for their type (a device and a procfs file), and nothing
// under secrets.
const catPolicy = `
@id("logs-read")
permit (principal in Keyhole::Role::"logs",
        action in [Keyhole::Action::"read", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::"{{SANDBOX}}/logs");
@id("odd-files")
permit (principal in Keyhole::Role::"logs",
        action == Keyhole::Action::"read",
        resource)
when { resource == Keyhole::File::"/dev/null" || resource == Keyhole::File::"/proc/version" };
@id("ls")
permit (principal in Keyhole::Role::"logs", action == Keyhole::Action::"exec", resource)
when { resource.path == "/usr/bin/ls" };
@id("no-secrets")
forbid (principal, action, resource in Keyhole::Dir::"{{SANDBOX}}/secrets");
`

// catFiles are the sandbox of the fs.cat tests: binary, empty and
// multi-MiB files, and a secret.
func catFiles() map[string]string {
	rng := rand.New(rand.NewPCG(1, 2))
	all := make([]byte, 256*8)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 5<<20+12345)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	return map[string]string{
		"logs/binary.bin":  string(all),
		"logs/empty":       "",
		"logs/big.bin":     string(big),
		"logs/small.txt":   "0123456789abcdefghij\n",
		"secrets/token":    "TOPSECRET-cat-77\n",
		"logs/five-k.bin":  strings.Repeat("0123456789", 500),
		"logs/eight-m.bin": strings.Repeat("A", 8<<20),
	}
}

func startCatEnv(t *testing.T, limits sshserver.Limits) *testenv.Env {
	t.Helper()
	return testenv.Start(t, testenv.Options{
		Policies: map[string]string{"cat.cedar": catPolicy},
		Files:    catFiles(),
		Limits:   limits,
	})
}

// lastDecisions waits for the end of the session that began after
// audit line before, and returns its decision lines as "action resource
// decision".
func lastDecisions(t *testing.T, e *testenv.Env, before int) []string {
	t.Helper()
	e.WaitAudit(t, func(map[string]any) bool { return countEnds(e.Audit(t)[before:]) > 0 })
	var got []string
	for _, d := range decisions(e.Audit(t)[before:]) {
		got = append(got, fmt.Sprintf("%s %s %s", d["action"], d["resource"], d["decision"]))
	}
	return got
}

// TestCatStockSSH: fs.cat through the stock ssh client sends the file's
// bytes as they are, in order with the script's prints, after one
// decision line; a denied or refused file sends nothing.
func TestCatStockSSH(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	e := startCatEnv(t, sshserver.Limits{})
	sb := e.Sandbox
	files := catFiles()
	tests := []struct {
		name       string
		script     string
		wantExit   int
		wantStdout string
		wantStderr string
		wantDec    []string
	}{
		{
			name:       "binary-all-byte-values",
			script:     fmt.Sprintf(`fs.cat(%q)`, sb+"/logs/binary.bin"),
			wantStdout: files["logs/binary.bin"],
			wantDec:    []string{"read " + sb + "/logs/binary.bin allow"},
		},
		{
			name:    "empty-file",
			script:  fmt.Sprintf(`print(fs.cat(%q))`, sb+"/logs/empty"),
			wantDec: []string{"read " + sb + "/logs/empty allow"},
			// fs.cat returns the count it sent.
			wantStdout: "0\n",
		},
		{
			name:       "five-mib-random",
			script:     fmt.Sprintf(`fs.cat(%q)`, sb+"/logs/big.bin"),
			wantStdout: files["logs/big.bin"],
			wantDec:    []string{"read " + sb + "/logs/big.bin allow"},
		},
		{
			name: "prints-around-keep-order",
			script: fmt.Sprintf(`print("before")
n = fs.cat(%q)
print("after", n)
fs.cat(%q)
print("end")`, sb+"/logs/small.txt", sb+"/logs/binary.bin"),
			wantStdout: "before\n" + files["logs/small.txt"] + "after 21\n" + files["logs/binary.bin"] + "end\n",
			wantDec:    []string{"read " + sb + "/logs/small.txt allow", "read " + sb + "/logs/binary.bin allow"},
		},
		{
			name:       "denied",
			script:     fmt.Sprintf(`print("x")`+"\n"+`fs.cat(%q)`, sb+"/secrets/token"),
			wantExit:   13,
			wantStdout: "x\n",
			wantStderr: `ACCESS_DENIED: read ` + sb + `/secrets/token denied for User::"agent-7" in Role::"logs" (policy no-secrets)`,
			wantDec:    []string{"read " + sb + "/secrets/token deny"},
		},
		{
			name:       "denied-caught",
			script:     fmt.Sprintf(`v, err = catch(fs.cat, %q)`+"\n"+`print(v, err.kind)`, sb+"/secrets/token"),
			wantStdout: "None ACCESS_DENIED\n",
			wantDec:    []string{"read " + sb + "/secrets/token deny"},
		},
		{
			name:       "fifo-refused",
			script:     fmt.Sprintf(`fs.cat(%q)`, sb+"/logs/fifo"),
			wantExit:   1,
			wantStderr: "INVALID_ARGUMENT: read " + sb + "/logs/fifo: is a fifo, not a regular file",
			wantDec:    []string{"read " + sb + "/logs/fifo allow"},
		},
		{
			name:       "device-refused",
			script:     `fs.cat("/dev/null")`,
			wantExit:   1,
			wantStderr: "INVALID_ARGUMENT: read /dev/null: is a device, not a regular file",
			wantDec:    []string{"read /dev/null allow"},
		},
		{
			name:       "procfs-refused",
			script:     `fs.cat("/proc/version")`,
			wantExit:   1,
			wantStderr: "INVALID_ARGUMENT: read /proc/version: is on procfs, whose file sizes say nothing of their contents; use fs.read",
			wantDec:    []string{"read /proc/version allow"},
		},
		{
			name:       "directory-refused",
			script:     fmt.Sprintf(`fs.cat(%q)`, sb+"/logs"),
			wantExit:   1,
			wantStderr: "INVALID_ARGUMENT: read " + sb + "/logs: is a directory",
			wantDec:    []string{"read " + sb + "/logs allow"},
		},
		{
			name:       "missing-file",
			script:     fmt.Sprintf(`fs.cat(%q)`, sb+"/logs/missing"),
			wantExit:   1,
			wantStderr: "NOT_FOUND: read " + sb + "/logs/missing",
			wantDec:    []string{"read " + sb + "/logs/missing allow"},
		},
		{
			name:       "missing-under-forbidden-is-denied",
			script:     fmt.Sprintf(`fs.cat(%q)`, sb+"/secrets/missing"),
			wantExit:   13,
			wantStderr: "ACCESS_DENIED",
			wantDec:    []string{"read " + sb + "/secrets/missing deny"},
		},
		{
			name:       "relative-path",
			script:     `fs.cat("logs/small.txt")`,
			wantExit:   1,
			wantStderr: `INVALID_ARGUMENT: read: path must be absolute, got "logs/small.txt"`,
			wantDec:    []string{"read logs/small.txt deny"},
		},
		{
			name:       "read-over-cap-says-cat",
			script:     fmt.Sprintf(`v, err = catch(fs.read, %q)`+"\n"+`print(err.kind, err.message)`, sb+"/logs/sparse.bin"),
			wantStdout: "LIMIT_EXCEEDED read " + sb + "/logs/sparse.bin: file is larger than the read limit of 67108864 bytes; fs.cat sends a file of any size to the output without holding it\n",
			wantDec:    []string{"read " + sb + "/logs/sparse.bin allow"},
		},
		{
			name:       "non-string-path",
			script:     `fs.cat(42)`,
			wantExit:   1,
			wantStderr: "INVALID_ARGUMENT: fs.cat: for parameter path: got int, want string",
		},
		{
			name:       "no-path",
			script:     `fs.cat()`,
			wantExit:   1,
			wantStderr: "INVALID_ARGUMENT: fs.cat: missing argument for path",
		},
		{
			name:       "two-paths",
			script:     fmt.Sprintf(`fs.cat(%q, %q)`, sb+"/logs/small.txt", sb+"/logs/empty"),
			wantExit:   1,
			wantStderr: "INVALID_ARGUMENT: fs.cat: got 2 arguments, want at most 1",
		},
		{
			name:       "nul-in-path",
			script:     `fs.cat("/tmp/a\x00b")`,
			wantExit:   1,
			wantStderr: "INVALID_ARGUMENT: read: path must not contain NUL bytes",
			wantDec:    []string{`read /tmp/a` + "\x00" + `b deny`},
		},
	}
	// The worker's descriptor socket does not reach a program it runs.
	ls := `r = proc.run(["/usr/bin/ls", "-l", "/proc/self/fd/"])` + "\n" + `print("socket:" in r.stdout, "/usr/bin/ls" in r.stdout)`
	tests = append(tests, struct {
		name       string
		script     string
		wantExit   int
		wantStdout string
		wantStderr string
		wantDec    []string
	}{name: "no-descriptor-socket-in-programs", script: ls, wantStdout: "False True\n", wantDec: []string{"exec /usr/bin/ls allow"}})
	// Larger than fs.read's 64 MiB cap, and sparse.
	if err := os.WriteFile(filepath.Join(sb, "logs/sparse.bin"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(sb, "logs/sparse.bin"), 65<<20); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(sb, "logs/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.Audit(t))
			res := e.SSH(t, "logs", tc.script)
			if res.Exit != tc.wantExit {
				t.Errorf("exit = %d, want %d\nstderr: %s", res.Exit, tc.wantExit, res.Stderr)
			}
			if res.Stdout != tc.wantStdout {
				t.Errorf("stdout: %q %d bytes, want %d (first difference at %d)", res.Stdout[:min(len(res.Stdout), 400)], len(res.Stdout), len(tc.wantStdout), firstDiff(res.Stdout, tc.wantStdout))
			}
			if !strings.Contains(res.Stderr, tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", res.Stderr, tc.wantStderr)
			}
			if strings.Contains(res.Stdout+res.Stderr, "TOPSECRET") {
				t.Errorf("secret leaked")
			}
			got := lastDecisions(t, e, before)
			if strings.Join(got, "\n") != strings.Join(tc.wantDec, "\n") {
				t.Errorf("decision lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.wantDec, "\n"))
			}
		})
	}
	stillServes(t, e)
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestCatLimits: a file past the output or read cap is sent up to the cap,
// not a byte more, and the script ends LIMIT_EXCEEDED; the structured
// protocol counts the bytes in stats.bytes_read.
func TestCatLimits(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	five := catFiles()["logs/five-k.bin"]
	tests := []struct {
		name       string
		limits     sshserver.Limits
		script     string
		wantStdout string
		wantStderr string
	}{
		{
			name:       "max-output",
			limits:     sshserver.Limits{MaxOutput: 1000},
			script:     `print("0123456789")` + "\n" + `fs.cat(SB + "/logs/five-k.bin")` + "\n" + `print("never")`,
			wantStdout: "0123456789\n" + five[:1000-11],
			wantStderr: "LIMIT_EXCEEDED: output limit of 1000 bytes exceeded",
		},
		{
			name:       "max-output-caught-is-not-caught",
			limits:     sshserver.Limits{MaxOutput: 1000},
			script:     `catch(fs.cat, SB + "/logs/five-k.bin")` + "\n" + `print("never")`,
			wantStdout: five[:1000],
			wantStderr: "LIMIT_EXCEEDED: output limit of 1000 bytes exceeded",
		},
		{
			name:       "max-read",
			limits:     sshserver.Limits{MaxRead: 3000},
			script:     `fs.cat(SB + "/logs/five-k.bin")` + "\n" + `print("never")`,
			wantStdout: five[:3000],
			wantStderr: "LIMIT_EXCEEDED: read " + "SB" + "/logs/five-k.bin: the script's read limit of 3000 bytes is exceeded",
		},
		{
			name:   "max-read-after-a-read",
			limits: sshserver.Limits{MaxRead: 3000},
			script: `print(len(fs.read(SB + "/logs/small.txt")))` + "\n" +
				`catch(fs.cat, SB + "/logs/five-k.bin")` + "\n" + `print("never")`,
			wantStdout: "21\n" + five[:3000-21],
			wantStderr: "the script's read limit of 3000 bytes is exceeded",
		},
		{
			name:       "read-budget-exactly-enough",
			limits:     sshserver.Limits{MaxRead: 5000, MaxOutput: 5006},
			script:     `n = fs.cat(SB + "/logs/five-k.bin")` + "\n" + `print(n)`,
			wantStdout: five + "5000\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startCatEnv(t, tc.limits)
			script := "SB = " + fmt.Sprintf("%q", e.Sandbox) + "\n" + tc.script
			res := e.SSH(t, "logs", script)
			wantExit := 0
			if tc.wantStderr != "" {
				wantExit = 124
			}
			if res.Exit != wantExit {
				t.Errorf("exit = %d, want %d; stderr %q", res.Exit, wantExit, res.Stderr)
			}
			if res.Stdout != tc.wantStdout {
				t.Errorf("stdout of %d bytes, want %d (first difference at %d)", len(res.Stdout), len(tc.wantStdout), firstDiff(res.Stdout, tc.wantStdout))
			}
			wantErr := strings.ReplaceAll(tc.wantStderr, "SB", e.Sandbox)
			if !strings.Contains(res.Stderr, wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", res.Stderr, wantErr)
			}
			stillServes(t, e)
		})
	}
}

// TestCatStructured: subsystem keyhole reports an fs.cat as cat events
// (base64 data in order, then the count) after its decision event, and
// counts the bytes in stats.bytes_read; a cap hit ends the events at the
// cap.
func TestCatStructured(t *testing.T) {
	files := catFiles()
	for _, tc := range []struct {
		name     string
		limits   sshserver.Limits
		file     string
		want     string
		wantExit int
	}{
		{name: "big", file: "logs/big.bin", want: files["logs/big.bin"]},
		{name: "empty", file: "logs/empty", want: ""},
		{name: "max-read", limits: sshserver.Limits{MaxRead: 4321}, file: "logs/five-k.bin",
			want: files["logs/five-k.bin"][:4321], wantExit: 124},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startCatEnv(t, tc.limits)
			p := filepath.Join(e.Sandbox, tc.file)
			req, _ := json.Marshal(map[string]any{"script": fmt.Sprintf("print(\"a\")\nn = fs.cat(%q)\nprint(n)", p)})
			lines, exit := structured(t, e, string(req)+"\n")
			if exit != tc.wantExit {
				t.Fatalf("exit %d, want %d; last line %v", exit, tc.wantExit, lines[len(lines)-1])
			}
			var kinds []string
			var data bytes.Buffer
			var count float64 = -1
			for _, l := range lines[:len(lines)-1] {
				switch {
				case l["print"] != nil:
					kinds = append(kinds, "print")
				case l["decision"] != nil:
					kinds = append(kinds, "decision")
				case l["cat"] != nil:
					c := l["cat"].(map[string]any)
					if c["path"] != p {
						t.Errorf("cat event path %v, want %s", c["path"], p)
					}
					if d, ok := c["data"].(string); ok {
						b, err := base64.StdEncoding.DecodeString(d)
						if err != nil {
							t.Fatal(err)
						}
						data.Write(b)
						if len(kinds) == 0 || kinds[len(kinds)-1] != "cat-data" {
							kinds = append(kinds, "cat-data")
						}
					} else if c["done"] == true {
						count = c["bytes"].(float64)
						kinds = append(kinds, "cat-done")
					}
				default:
					t.Errorf("unexpected line %v", l)
				}
			}
			if data.String() != tc.want {
				t.Errorf("cat data of %d bytes, want %d", data.Len(), len(tc.want))
			}
			want := "print decision cat-data cat-done print"
			switch {
			case tc.want == "":
				want = "print decision cat-done print"
			case tc.wantExit != 0:
				want = "print decision cat-data cat-done"
				if count != float64(len(tc.want)) {
					t.Errorf("cat done count %v, want %d", count, len(tc.want))
				}
			default:
				if count != float64(len(tc.want)) {
					t.Errorf("cat done count %v, want %d", count, len(tc.want))
				}
			}
			if got := strings.Join(kinds, " "); got != want {
				t.Errorf("events %q, want %q", got, want)
			}
			end := lines[len(lines)-1]
			stats := end["stats"].(map[string]any)
			if stats["bytes_read"] != float64(len(tc.want)) {
				t.Errorf("stats.bytes_read = %v, want %d", stats["bytes_read"], len(tc.want))
			}
		})
	}
}

// streamWhile runs script through the stock ssh client, reads the first
// bytes of its output, calls during while the server is still sending
// (the file is larger than what the client's channel window and pipes
// hold), then reads the rest. It returns the whole output.
func streamWhile(t *testing.T, e *testenv.Env, script string, during func()) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := testenv.SSHCommand(ctx, e.KnownHosts, e.Addr, "logs", e.UserKey, e.UserCert, script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 4096)
	if _, err := io.ReadFull(out, first); err != nil {
		t.Fatalf("first bytes: %v; stderr %s", err, stderr.String())
	}
	during()
	rest, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	exit := 0
	if err := cmd.Wait(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		exit = ee.ExitCode()
	}
	return string(first) + string(rest), exit
}

// TestCatFileChangesDuringStream: the bytes sent are the file as
// authorized: one that grows while it is sent is cut at the size the
// policy saw, and a symlink swapped to a forbidden file after the pin
// still streams the pinned file.
func TestCatFileChangesDuringStream(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	e := startCatEnv(t, sshserver.Limits{})
	eight := filepath.Join(e.Sandbox, "logs/eight-m.bin")
	t.Run("grown", func(t *testing.T) {
		got, exit := streamWhile(t, e, fmt.Sprintf(`fs.cat(%q)`, eight), func() {
			f, err := os.OpenFile(eight, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(bytes.Repeat([]byte("B"), 3<<20)); err != nil {
				t.Fatal(err)
			}
		})
		if exit != 0 || got != strings.Repeat("A", 8<<20) {
			t.Errorf("exit %d, output of %d bytes with %d B, want %d A", exit, len(got), strings.Count(got, "B"), 8<<20)
		}
	})
	t.Run("symlink-swapped", func(t *testing.T) {
		link := filepath.Join(e.Sandbox, "logs/link")
		if err := os.Symlink(filepath.Join(e.Sandbox, "logs/big.bin"), link); err != nil {
			t.Fatal(err)
		}
		got, exit := streamWhile(t, e, fmt.Sprintf(`fs.cat(%q)`, link), func() {
			tmp := link + ".new"
			if err := os.Symlink(filepath.Join(e.Sandbox, "secrets/token"), tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, link); err != nil {
				t.Fatal(err)
			}
		})
		if exit != 0 || got != catFiles()["logs/big.bin"] {
			t.Errorf("exit %d, output of %d bytes, want the pinned file's %d", exit, len(got), len(catFiles()["logs/big.bin"]))
		}
		if strings.Contains(got, "TOPSECRET") {
			t.Error("secret leaked")
		}
	})
	stillServes(t, e)
}

// fakeCatWorker misbehaves with fs.cat's descriptor socket as mode says.
func fakeCatWorker(mode string, send func(byte, any), ok map[string]any) int {
	sock := os.NewFile(workerproto.FDSocketFD, "fds")
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return 6
	}
	cat := func(n int64) { send(byte(workerproto.TypeCat), workerproto.Cat{Path: "/fake/cat", Bytes: n}) }
	sendFD := func(f *os.File) {
		if workerproto.SendFD(sock, f) != nil {
			os.Exit(6)
		}
	}
	switch mode {
	case "cat-no-descriptor":
		cat(10)
	case "cat-pipe":
		r, _, err := os.Pipe()
		if err != nil {
			return 6
		}
		sendFD(r)
		cat(10)
	case "cat-write-only":
		name := fmt.Sprintf("%s/fake-cat-%d", os.TempDir(), os.Getpid())
		w, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return 6
		}
		_ = os.Remove(name)
		sendFD(w)
		cat(0)
	case "cat-two-descriptors":
		if unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(int(exe.Fd()), int(exe.Fd())), nil, 0) != nil {
			return 6
		}
		cat(10)
	case "cat-negative":
		sendFD(exe)
		cat(-1)
	case "cat-past-read":
		// The server's read cap is fakeCatMaxRead.
		sendFD(exe)
		cat(fakeCatMaxRead + 1)
	case "cat-past-output":
		// Within the read cap, past the output cap (fakeCatMaxOutput).
		sendFD(exe)
		cat(fakeCatMaxOutput + 50)
	default:
		return 5
	}
	send(4, ok)
	return 0
}

// The caps of the servers the fake cat workers run under.
const (
	fakeCatMaxRead   = 1000
	fakeCatMaxOutput = 100
)

// TestCatMisbehavingWorker: a worker that abuses fs.cat's descriptor
// socket (no descriptor, one that is not a readable regular file, two,
// more bytes than its read cap) is stopped as a protocol breaker and
// sends nothing; one that asks past its output cap gets the cap's worth
// and LIMIT_EXCEEDED.
func TestCatMisbehavingWorker(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode       string
		wantExit   int
		wantErr    string
		wantStdout int
	}{
		{"cat-no-descriptor", 125, "INTERNAL: worker protocol error", 0},
		{"cat-pipe", 125, "INTERNAL: worker protocol error", 0},
		{"cat-write-only", 125, "INTERNAL: worker protocol error", 0},
		{"cat-two-descriptors", 125, "INTERNAL: worker protocol error", 0},
		{"cat-negative", 125, "INTERNAL: worker protocol error", 0},
		{"cat-past-read", 125, "INTERNAL: worker protocol error", 0},
		{"cat-past-output", 124, "LIMIT_EXCEEDED: output limit of 100 bytes exceeded", fakeCatMaxOutput},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			mode := tc.mode
			e := testenv.Start(t, testenv.Options{
				Policies: map[string]string{"logs.cedar": logsPolicy},
				Limits:   sshserver.Limits{MaxRead: fakeCatMaxRead, MaxOutput: fakeCatMaxOutput},
				Worker: func() *exec.Cmd {
					cmd := worker.Command(exe, "fake-worker")()
					cmd.Env = []string{fakeWorkerEnv + "=" + mode}
					return cmd
				},
			})
			stdout, stderr, exit := runXC(t, e, `print("hi")`)
			if exit != tc.wantExit || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("exit %d stderr %q, want %d %q", exit, stderr, tc.wantExit, tc.wantErr)
			}
			if len(stdout) != tc.wantStdout {
				t.Errorf("stdout of %d bytes, want %d", len(stdout), tc.wantStdout)
			}
		})
	}
}

// TestCatDocExample runs the fs.cat example of docs/scripts.md, with the
// sandbox's file for /var/log/app/app.log.
func TestCatDocExample(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	doc, err := os.ReadFile(filepath.Join("..", "docs", "scripts.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "#### fs.cat: bulk reads")
	if !ok {
		t.Fatal("docs/scripts.md has no fs.cat section")
	}
	_, block, ok := strings.Cut(after, "```python\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("the fs.cat section has no python example")
	}
	e := startCatEnv(t, sshserver.Limits{})
	small := catFiles()["logs/small.txt"]
	res := e.SSH(t, "logs", strings.ReplaceAll(block, "/var/log/app/app.log", e.Sandbox+"/logs/small.txt"))
	if want := "--- app.log\n" + small + "--- 21 bytes\n"; res.Exit != 0 || res.Stdout != want {
		t.Errorf("exit %d stdout %q stderr %q, want %q", res.Exit, res.Stdout, res.Stderr, want)
	}
}
