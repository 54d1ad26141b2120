package bench_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/client"
	"github.com/keyhole-dev/keyhole/internal/testenv"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// pushBenchEnv names the number of runs TestPushThroughput makes ("5");
// unset, the test skips.
const pushBenchEnv = "KEYHOLE_PUSH_BENCH"

// TestPushThroughput pushes a 100 MiB file to one keyhole host with
// client.Push (hash check on the host, sftp upload) when it changed and
// when it is already there, next to the stock sftp client's put of the
// same file to the same server:
//
//	KEYHOLE_PUSH_BENCH=5 go test -run TestPushThroughput -v ./bench/
func TestPushThroughput(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv(pushBenchEnv))
	if runs <= 0 {
		t.Skip(pushBenchEnv + " not set")
	}
	testenv.NeedBinary(t, "sftp")
	kh := testenv.Start(t, testenv.Options{
		Policies: map[string]string{"bench.cedar": `@id("bench-files")
permit (principal in Keyhole::Role::"deploy",
        action in [Keyhole::Action::"read", Keyhole::Action::"stat", Keyhole::Action::"write",
                   Keyhole::Action::"create"],
        resource in Keyhole::Dir::"{{SANDBOX}}");
@id("sftp-start")
permit (principal in Keyhole::Role::"deploy", action == Keyhole::Action::"stat", resource == Keyhole::Dir::"/");`},
		Limits: sshserver.Limits{MaxWall: 10 * time.Minute, MaxRead: 1 << 30, MaxWrite: 1 << 30},
	})
	data := make([]byte, sftpBenchSize)
	rand.Read(data)
	local := filepath.Join(kh.Dir, "local.bin")
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(kh.Sandbox, "up.bin")
	d, err := client.NewDialer(client.Config{Identities: []string{kh.UserKey}, KnownHosts: []string{kh.KnownHosts}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	host, port, _ := strings.Cut(kh.Addr, ":")
	p, _ := strconv.Atoi(port)
	target := []client.Target{{Name: "h", Addr: host, Port: p, User: "deploy"}}
	pf, err := client.NewPushFile(local, remote)
	if err != nil {
		t.Fatal(err)
	}
	push := func(want string) time.Duration {
		start := time.Now()
		r := d.PushFanOut(context.Background(), target, []client.PushFile{pf}, client.PushFanOutOptions{})[0]
		el := time.Since(start)
		if r.Status() != want {
			t.Fatalf("push: %s, want %s: %v", r.Status(), want, r.Err)
		}
		return el
	}
	var changed, unchanged, put []time.Duration
	for i := 0; i < runs+1; i++ {
		os.Remove(remote)
		c := push("changed")
		u := push("unchanged")
		os.Remove(remote)
		start := time.Now()
		if res := kh.SFTPBatch(t, "deploy", "put "+local+" "+remote+"\n"); res.Exit != 0 {
			t.Fatalf("sftp put: %+v", res)
		}
		s := time.Since(start)
		if i > 0 {
			changed, unchanged, put = append(changed, c), append(unchanged, u), append(put, s)
		}
	}
	mib := float64(sftpBenchSize) / (1 << 20)
	t.Logf("100 MiB, %d runs, median (min): push changed %.0f ms (%.0f) %.0f MiB/s; push unchanged %.0f ms (%.0f); stock sftp put %.0f ms (%.0f) %.0f MiB/s; load %s",
		runs, ms(median(changed)), ms(slices.Min(changed)), mib/median(changed).Seconds(),
		ms(median(unchanged)), ms(slices.Min(unchanged)), ms(median(put)), ms(slices.Min(put)), mib/median(put).Seconds(), loadAverage())
}
