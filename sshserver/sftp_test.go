package sshserver_test

import (
	"testing"

	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

const sftpPolicy = `
@id("sftp-root")
permit (principal in Keyhole::Role::"deploy",
        action == Keyhole::Action::"stat",
        resource == Keyhole::Dir::"/");

@id("deploy-files")
permit (principal in Keyhole::Role::"deploy",
        action in [Keyhole::Action::"read", Keyhole::Action::"list", Keyhole::Action::"stat",
                   Keyhole::Action::"write", Keyhole::Action::"create", Keyhole::Action::"delete",
                   Keyhole::Action::"mkdir", Keyhole::Action::"rename", Keyhole::Action::"chmod"],
        resource in Keyhole::Dir::"{{SANDBOX}}/deploy");

@id("no-secrets")
forbid (principal, action, resource in Keyhole::Dir::"{{SANDBOX}}/secrets");
`

func startSftpEnv(t *testing.T, limits sshserver.Limits) *testenv.Env {
	t.Helper()
	return testenv.Start(t, testenv.Options{
		Policies: map[string]string{"sftp.cedar": sftpPolicy},
		Files: map[string]string{
			"deploy/app.conf":  "old config\n",
			"secrets/token":    "TOPSECRET-4f1c\n",
			"secrets/app.conf": "secret config\n",
		},
		Limits: limits,
	})
}

func TestSftpSmoke(t *testing.T) {
	e := startSftpEnv(t, sshserver.Limits{})
	r := e.SFTPBatch(t, "deploy", "ls -l "+e.Sandbox+"/deploy\nget "+e.Sandbox+"/deploy/app.conf "+e.Dir+"/got\n")
	t.Logf("%+v", r)
	for _, ev := range e.Audit(t) {
		t.Log(ev)
	}
}
