package client

import (
	"reflect"
	"testing"
)

// A ProxyJump chain as ssh -J and an inventory's ProxyJump give it,
// ssh:// hops included.
func TestParseJump(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    []Target
		wantErr bool
	}{
		{in: "bastion", want: []Target{{Name: "bastion", Addr: "bastion"}}},
		{in: "ops@bastion:2200", want: []Target{{Name: "ops@bastion:2200", Addr: "bastion", Port: 2200, User: "ops"}}},
		{in: "ssh://ops@bastion:2200", want: []Target{{Name: "ops@bastion:2200", Addr: "bastion", Port: 2200, User: "ops"}}},
		{in: "a@outer, ssh://b@[2001:db8::1]:22", want: []Target{
			{Name: "a@outer", Addr: "outer", User: "a"},
			{Name: "b@[2001:db8::1]:22", Addr: "2001:db8::1", Port: 22, User: "b"},
		}},
		{in: "ssh://", wantErr: true},
		{in: "ops@bastion:0", wantErr: true},
		{in: "a,,b", wantErr: true},
		{in: "-oProxyCommand=x", wantErr: true},
	} {
		got, err := parseJump(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseJump(%q): error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseJump(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
