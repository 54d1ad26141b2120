package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestParseSSHDConfig covers what the fallback parser must get right when
// sshd cannot be run: first value wins, Match blocks counted apart (and
// "Match all" ending them), Keyword=value and quoted arguments, and an
// Include that includes itself.
func TestParseSSHDConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		mustOK(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	write("loop.conf", "Include loop.conf\nTrustedUserCAKeys /from/include\n")
	main := write("sshd_config", `# comment
Include loop.conf
trustedusercakeys /second/ignored
AuthorizedKeysFile=".ssh/my keys" %h/.ssh/other
Match User deploy
  TrustedUserCAKeys /in/match
  AuthorizedPrincipalsFile none
Match all
AuthorizedPrincipalsFile /etc/ssh/principals/%u
`)
	p, err := parseSSHDConfig(main)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.global.trustedUserCAKeys; !slices.Equal(got, []string{"/from/include"}) {
		t.Errorf("global TrustedUserCAKeys = %q, want the included file's (first wins)", got)
	}
	if got := p.match.trustedUserCAKeys; !slices.Equal(got, []string{"/in/match"}) {
		t.Errorf("Match TrustedUserCAKeys = %q", got)
	}
	if got := p.global.authorizedKeysFile; len(got) != 1 || !slices.Equal(got[0], []string{".ssh/my keys", "%h/.ssh/other"}) {
		t.Errorf("AuthorizedKeysFile = %q", got)
	}
	if p.global.principals != "authorizedprincipalsfile /etc/ssh/principals/%u" {
		t.Errorf("principals = %q: the line after Match all is global", p.global.principals)
	}
	if _, err := parseSSHDConfig(filepath.Join(dir, "absent")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want not-exist", err)
	}
}

func TestExpandSSHDPath(t *testing.T) {
	u := loginUser{name: "alice", uid: "1000", home: "/home/alice"}
	for _, tc := range []struct{ pat, want string }{
		{".ssh/authorized_keys", "/home/alice/.ssh/authorized_keys"},
		{"%h/.ssh/keys", "/home/alice/.ssh/keys"},
		{"/etc/ssh/keys/%u.%U", "/etc/ssh/keys/alice.1000"},
		{"/etc/ssh/100%%/%x", "/etc/ssh/100%/%x"},
		{"../../etc/shadow", "/etc/shadow"},
	} {
		if got := expandSSHDPath(tc.pat, u); got != tc.want {
			t.Errorf("expandSSHDPath(%q) = %q, want %q", tc.pat, got, tc.want)
		}
	}
}

func TestLoginUsers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "passwd")
	mustOK(t, os.WriteFile(p, []byte(`root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
git:x:998:998::/home/git:/usr/bin/false
sh:x:1001:1001::/home/sh:
rel:x:1002:1002::home/rel:/bin/sh
#commented:x:1003:1003::/home/c:/bin/sh
broken line
`), 0o644))
	users, err := loginUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.name)
	}
	if want := []string{"root", "sh"}; !slices.Equal(names, want) {
		t.Errorf("login users = %q, want %q", names, want)
	}
}
