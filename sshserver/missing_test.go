package sshserver_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keyhole-dev/keyhole/internal/testenv"
)

// TestMissingDirUnderPermit: through a real server, a directory that a
// policy permits but that does not exist yet is NOT_FOUND to fs.list and
// False to fs.exists (as `keyhole policy check` predicts), not
// ACCESS_DENIED; a missing directory under a forbid stays ACCESS_DENIED.
func TestMissingDirUnderPermit(t *testing.T) {
	e := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"logs.cedar": logsPolicy, "later.cedar": `
@id("later") permit (principal in Keyhole::Role::"logs",
  action in [Keyhole::Action::"list", Keyhole::Action::"stat"], resource in Keyhole::Dir::"{{SANDBOX}}/later");`},
		Files: sandboxFiles,
	})
	later, secret := e.Sandbox+"/later", e.Sandbox+"/secrets/not-yet"
	script := fmt.Sprintf(`print(fs.exists(%[1]q))
v, err = catch(fs.list, %[1]q)
print(err.kind)
v, err = catch(fs.exists, %[2]q)
print(err.kind)
`, later, secret)
	stdout, stderr, exit := runXC(t, e, script)
	if exit != 0 || stdout != "False\nNOT_FOUND\nACCESS_DENIED\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", exit, stdout, stderr)
	}
	evs := sessionOf(t, e, later)
	var got []string
	for _, ev := range decisions(evs) {
		got = append(got, fmt.Sprint(ev["action"], " ", strings.TrimPrefix(ev["resource"].(string), e.Sandbox), " ", ev["decision"]))
	}
	if want := "stat /later allow|list /later allow|stat /secrets/not-yet deny"; strings.Join(got, "|") != want {
		t.Errorf("decisions %q, want %q", got, want)
	}
}
