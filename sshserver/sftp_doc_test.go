package sshserver_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// docBlocks returns the fenced blocks of the section of docs/files.md
// under heading, by language.
func docBlocks(t *testing.T, heading string) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "docs", "files.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	in, fence := false, ""
	var block strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case fence != "" && line == "```":
			out[fence] = append(out[fence], block.String())
			fence = ""
		case fence != "":
			block.WriteString(line + "\n")
		case strings.HasPrefix(line, "## "):
			in = line == "## "+heading
		case in && strings.HasPrefix(line, "```"):
			fence = strings.TrimPrefix(line, "```")
			block.Reset()
		}
	}
	if len(out) == 0 {
		t.Fatalf("docs/files.md has no blocks under %q", heading)
	}
	return out
}

// TestDocsDeployDirectory runs the deploy example of docs/files.md: its
// policy, and its commands as written, with the stock ssh, sftp and scp
// pointed at a server on 127.0.0.1 and /srv/deploy inside the sandbox.
func TestDocsDeployDirectory(t *testing.T) {
	for _, b := range []string{"ssh", "sftp", "scp", "bash"} {
		testenv.NeedBinary(t, b)
	}
	blocks := docBlocks(t, "A deploy directory shared by sftp, scp and scripts")
	// README's example is lines of this one.
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"echo 'put app.conf /srv/deploy/app.conf' | sftp -b - deploy@host", "scp app.conf deploy@host:/srv/deploy/app.conf"} {
		if !strings.Contains(string(readme), "\n"+line+"\n") || len(blocks["sh"]) == 0 || !strings.Contains(blocks["sh"][0], line+"\n") {
			t.Errorf("README's example line %q is not a line of docs/files.md's allowed block", line)
		}
	}
	if len(blocks["cedar"]) != 1 || len(blocks["sh"]) != 2 {
		t.Fatalf("want one cedar and two sh blocks, got %d and %d", len(blocks["cedar"]), len(blocks["sh"]))
	}
	e := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"deploy.cedar": strings.ReplaceAll(blocks["cedar"][0], `"/srv/deploy`, `"{{SANDBOX}}/srv/deploy`)},
		Files: map[string]string{
			"srv/deploy/app.conf":         "old\n",
			"srv/deploy/secrets/app.conf": "secret\n",
		},
		Limits: sshserver.Limits{},
	})
	work := filepath.Join(e.Dir, "work")
	bin := filepath.Join(e.Dir, "bin")
	for _, d := range []string{work, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(work, "app.conf"), []byte("local config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(e.Addr, ":")
	hostKey, err := os.ReadFile(e.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := strings.Cut(string(hostKey), " ")
	kh := filepath.Join(e.Dir, "known_hosts_alias")
	cfg := filepath.Join(e.Dir, "ssh_config")
	must(t, os.WriteFile(kh, []byte("keyhole-doc "+key), 0o644))
	must(t, os.WriteFile(cfg, []byte(strings.Join([]string{
		"Host host", "  HostName 127.0.0.1", "  Port " + port, "  HostKeyAlias keyhole-doc",
		"  IdentityFile " + e.UserKey, "  CertificateFile " + e.UserCert, "  IdentitiesOnly yes",
		"  IdentityAgent none", "  BatchMode yes", "  StrictHostKeyChecking yes",
		"  UserKnownHostsFile " + kh, "  LogLevel ERROR", ""}, "\n")), 0o644))
	for _, b := range []string{"ssh", "sftp", "scp"} {
		real, _ := exec.LookPath(b)
		must(t, os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\nexec "+real+" -F "+cfg+" \"$@\"\n"), 0o755))
	}
	deploy := e.Sandbox + "/srv/deploy"
	run := func(line string) testenv.SSHResult {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-c", strings.ReplaceAll(line, "/srv/deploy", deploy))
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "SSH_AUTH_SOCK=")
		return testenv.Run(t, cmd)
	}
	var last testenv.SSHResult
	for _, line := range strings.Split(strings.TrimSpace(blocks["sh"][0]), "\n") {
		last = run(line)
		if last.Exit != 0 {
			t.Fatalf("%s: exit %d, %q", line, last.Exit, last.Stderr)
		}
		if strings.Contains(line, "put app.conf") || strings.HasPrefix(line, "scp") {
			wantFile(t, deploy+"/app.conf", "local config\n")
			must(t, os.WriteFile(deploy+"/app.conf", []byte("old\n"), 0o644))
		}
	}
	if last.Stdout != "from a script\n\n" {
		t.Errorf("script read %q", last.Stdout)
	}
	// The Ansible section's raw example runs that script, with a terminal
	// asked for as Ansible asks.
	raw := "print(fs.read(\"/srv/deploy/app.conf\"))"
	files, err := os.ReadFile(filepath.Join("..", "docs", "files.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files), "ansible web -m raw -a '"+raw+"'") || !strings.Contains(blocks["sh"][0], "'"+raw+"'") {
		t.Errorf("the Ansible example's script is not the deploy example's")
	}
	if r := run("ssh -tt deploy@host '" + raw + "'"); r.Exit != 0 || r.Stdout != "from a script\r\n\r\n" {
		t.Errorf("ssh -tt: exit %d, %q %q", r.Exit, r.Stdout, r.Stderr)
	}
	before := snapshot(t, deploy+"/secrets")
	denied := strings.Split(strings.TrimSpace(blocks["sh"][1]), "\n")
	for _, line := range denied {
		if r := run(line); r.Exit == 0 {
			t.Errorf("%s: exit 0", line)
		}
	}
	if after := snapshot(t, deploy+"/secrets"); !reflect.DeepEqual(before, after) {
		t.Errorf("secrets changed: %v -> %v", before, after)
	}
	if n := len(sftpDenies(e.Audit(t), deploy+"/secrets")); n < 2 {
		t.Errorf("%d sftp deny lines under secrets, want one per denied transfer", n)
	}
	n := 0
	for _, ev := range decisions(e.Audit(t)) {
		if ev["transport"] == "script" && ev["decision"] == "deny" && ev["resource"] == deploy+"/secrets/app.conf" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d script deny lines, want 1", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSftpTransportPolicy: docs/files.md's `when { context.transport ==
// "sftp" }` lets uploads write where scripts may not.
func TestSftpTransportPolicy(t *testing.T) {
	testenv.NeedBinary(t, "sftp")
	when := `when { context.transport == "sftp" }`
	doc, err := os.ReadFile(filepath.Join("..", "docs", "files.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "`"+when+"`") {
		t.Fatalf("docs/files.md does not show %s", when)
	}
	e := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"p.cedar": `@id("start")
permit (principal, action == Keyhole::Action::"stat", resource == Keyhole::Dir::"/");
@id("uploads")
permit (principal in Keyhole::Role::"deploy",
        action in [Keyhole::Action::"write", Keyhole::Action::"create", Keyhole::Action::"stat"],
        resource in Keyhole::Dir::"{{SANDBOX}}/deploy")
` + when + ";"},
		Files: map[string]string{"deploy/app.conf": "old\n"},
	})
	local := filepath.Join(e.Dir, "local")
	must(t, os.WriteFile(local, []byte("uploaded\n"), 0o644))
	target := e.Sandbox + "/deploy/app.conf"
	if r := e.SFTPBatch(t, "deploy", "put "+local+" "+target+"\n"); r.Exit != 0 {
		t.Fatalf("sftp put: exit %d %q", r.Exit, r.Stderr)
	}
	wantFile(t, target, "uploaded\n")
	r := e.SSH(t, "deploy", `fs.write("`+target+`", "from a script\n")`)
	if r.Exit != 13 || !strings.Contains(r.Stderr, "ACCESS_DENIED") {
		t.Errorf("script write: exit %d %q", r.Exit, r.Stderr)
	}
	wantFile(t, target, "uploaded\n")
}
