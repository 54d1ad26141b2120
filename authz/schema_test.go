package authz_test

import (
	"sync"
	"testing"

	"github.com/keyhole-dev/keyhole/authz"
)

// TestValidatorShared loads good and bad sets from many goroutines at once:
// the strict validator is built once per process and shared, so each load
// must still report exactly its own problems (and -race must stay quiet).
func TestValidatorShared(t *testing.T) {
	t.Parallel()
	sets := []struct {
		name    string
		files   map[string][]byte
		wantErr string
	}{
		{"good", files(`@id("a") permit (principal in Keyhole::Role::"logs", action == Keyhole::Action::"read", resource in Keyhole::Dir::"/var/log");`), ""},
		{"unknown-attribute", files(`@id("b") permit (principal, action == Keyhole::Action::"read", resource) when { resource.owner == "x" };`), "authz: 00.cedar:1:"},
		{"wrong-type", files(`@id("c") permit (principal, action == Keyhole::Action::"read", resource) when { resource.size == "big" };`), "authz: 00.cedar:1:"},
		{"unknown-action", files(`@id("d") permit (principal, action == Keyhole::Action::"fly", resource);`), "authz: 00.cedar:1:"},
	}
	// What each set gives when loaded alone.
	want := make([]string, len(sets))
	for i, s := range sets {
		_, err := authz.LoadFiles(s.files)
		if (err == nil) != (s.wantErr == "") {
			t.Fatalf("%s: LoadFiles error %v, want error %v", s.name, err, s.wantErr != "")
		}
		if err != nil {
			want[i] = err.Error()
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(sets))
	for range 8 {
		for i, s := range sets {
			wg.Go(func() {
				ps, err := authz.LoadFiles(s.files)
				got := ""
				if err != nil {
					got = err.Error()
				} else if ps.Len() != 1 {
					got = "wrong number of policies"
				}
				if got != want[i] {
					errs <- s.name + ": got " + got + ", want " + want[i]
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
