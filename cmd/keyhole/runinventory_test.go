package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/keyhole-dev/keyhole/client"
)

// An inventory's hosts become targets: named by their inventory name,
// dialed at ansible_host (an IPv6 address bare, bracketed by the
// dialer), as ansible_user or else -l, through their ProxyJump or else
// the dialer's -J; ProxyJump=none stays "none", a direct connection
// whatever -J says.
func TestInventoryTargets(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.ini")
	if err := os.WriteFile(inv, []byte(`[web]
web1 ansible_host=2001:db8::1 ansible_port=2222
web2 ansible_user=deploy ansible_ssh_common_args='-o ProxyJump=ssh://ops@bastion:2200'
web3 ansible_ssh_common_args='-o ProxyJump=none'
[db]
db1:2200
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		limit string
		want  []client.Target
	}{
		{"", []client.Target{
			{Name: "web1", Addr: "2001:db8::1", Port: 2222, User: "logs"},
			{Name: "web2", Addr: "web2", User: "deploy", Jump: "ssh://ops@bastion:2200"},
			{Name: "web3", Addr: "web3", User: "logs", Jump: "none"},
			{Name: "db1", Addr: "db1", Port: 2200, User: "logs"},
		}},
		{"web:!web1:!web3", []client.Target{{Name: "web2", Addr: "web2", User: "deploy", Jump: "ssh://ops@bastion:2200"}}},
	} {
		got, err := targetSource{inventory: inv, limit: tt.limit}.targets("logs")
		if err != nil {
			t.Fatalf("limit %q: %v", tt.limit, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("limit %q: got %+v, want %+v", tt.limit, got, tt.want)
		}
	}
}
