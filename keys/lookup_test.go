package keys_test

import (
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

func TestKeysFileLookup(t *testing.T) {
	a, _, _ := keys.GenerateKey()
	b, _, _ := keys.GenerateKey()
	line := func(s ssh.Signer, opts, comment string) string {
		return opts + " " + string(ssh.MarshalAuthorizedKey(s.PublicKey()))[:len(ssh.MarshalAuthorizedKey(s.PublicKey()))-1] + " " + comment + "\n"
	}
	data := "# comment\n" + line(a, `principals="logs"`, "agent-1") + "\n" +
		line(a, `principals="deploy",expiry-time="20000101"`, "agent-2")
	kf, err := keys.ParseKeysFile([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	got := kf.Lookup(a.PublicKey())
	want := []keys.Listing{{Line: 2, UserID: "agent-1"}, {Line: 4, UserID: "agent-2"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Lookup(a) = %+v, want %+v (expired lines are listed too)", got, want)
	}
	if got := kf.Lookup(b.PublicKey()); len(got) != 0 {
		t.Fatalf("Lookup(b) = %+v, want none", got)
	}
	var nilKF *keys.KeysFile
	if got := nilKF.Lookup(a.PublicKey()); got != nil {
		t.Fatalf("nil keys file lists %+v", got)
	}
	cas, err := keys.ParseTrustedCAs([]byte(string(ssh.MarshalAuthorizedKey(a.PublicKey())) + "\n" + string(ssh.MarshalAuthorizedKey(b.PublicKey()))))
	if err != nil {
		t.Fatal(err)
	}
	if cas.Len() != 2 {
		t.Fatalf("Len = %d, want 2", cas.Len())
	}
}
