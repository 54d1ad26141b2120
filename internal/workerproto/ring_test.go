package workerproto_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/keyhole-dev/keyhole/internal/workerproto"
)

// newRing returns the two ends of a new ring of size bytes, mapped twice
// as the server and a worker map it.
func newRing(t testing.TB, size int) (producer, consumer *workerproto.Ring, f *os.File) {
	t.Helper()
	f, err := workerproto.NewRingFile(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	producer, err = workerproto.MapRing(f)
	if err != nil {
		t.Fatal(err)
	}
	consumer, err = workerproto.MapRing(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { producer.Unmap(); consumer.Unmap() })
	return producer, consumer, f
}

func takeAll(t *testing.T, r *workerproto.Ring) []string {
	t.Helper()
	var got []string
	if err := r.Take(func(rec []byte) error { got = append(got, string(rec)); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRingOrderWrapAndFull(t *testing.T) {
	p, c, _ := newRing(t, 4096)
	var want []string
	// Many rounds of records of odd sizes wrap the 4 KiB area many times.
	for round := range 200 {
		want = want[:0]
		for i := range 5 {
			rec := strings.Repeat(strconv.Itoa(i), 1+(round*7+i*13)%300)
			if err := p.Put([]byte(rec)); err != nil {
				t.Fatalf("round %d put %d: %v", round, i, err)
			}
			want = append(want, rec)
		}
		if !c.Pending() {
			t.Fatal("Pending = false with records in the ring")
		}
		got := takeAll(t, c)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("round %d: got %q, want %q", round, got, want)
		}
		if c.Pending() {
			t.Fatal("Pending = true after Take")
		}
	}
	// Full: a record that does not fit is refused, and fits once taken.
	big := bytes.Repeat([]byte("x"), 3000)
	if err := p.Put(big); err != nil {
		t.Fatal(err)
	}
	if err := p.Put(big); !errors.Is(err, workerproto.ErrRingFull) {
		t.Fatalf("second put = %v, want ErrRingFull", err)
	}
	if got := takeAll(t, c); len(got) != 1 || got[0] != string(big) {
		t.Fatalf("took %d records", len(got))
	}
	if err := p.Put(big); err != nil {
		t.Fatalf("put after take: %v", err)
	}
	if err := p.Put(make([]byte, workerproto.MaxRecord+1)); err == nil || errors.Is(err, workerproto.ErrRingFull) {
		t.Fatalf("oversized record: %v", err)
	}
}

func TestRingTakeStopsAtAnError(t *testing.T) {
	p, c, _ := newRing(t, 4096)
	for _, s := range []string{"a", "b", "c"} {
		if err := p.Put([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	var seen []string
	err := c.Take(func(rec []byte) error {
		seen = append(seen, string(rec))
		if string(rec) == "b" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || strings.Join(seen, "") != "ab" {
		t.Fatalf("Take = %v after %q", err, seen)
	}
	// "b" was not freed: it comes again.
	if got := takeAll(t, c); strings.Join(got, "") != "bc" {
		t.Fatalf("then took %q", got)
	}
}

// TestRingHostileProducer writes headers and lengths an honest producer
// never would, straight into the shared memory: the consumer reports each
// as an error and never reads out of bounds.
func TestRingHostileProducer(t *testing.T) {
	for _, tc := range []struct {
		name string
		head uint64
		len  uint32 // written at offset 0 of the data area
		want string
	}{
		{"head-past-full-ring", 4096 + 1, 1, "impossible"},
		{"head-huge", 1 << 63, 1, "impossible"},
		{"length-over-max", 8, workerproto.MaxRecord + 1, "ring record"},
		{"length-past-head", 8, 100, "ring record"},
		{"length-cut-off", 2, 0, "cut off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c, f := newRing(t, 4096)
			mem, err := mapRaw(f)
			if err != nil {
				t.Fatal(err)
			}
			binary.LittleEndian.PutUint32(mem[64:], tc.len)
			*(*uint64)(unsafe.Pointer(&mem[0])) = tc.head
			calls := 0
			err = c.Take(func([]byte) error { calls++; return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) || calls != 0 {
				t.Fatalf("Take = %v after %d records, want an error with %q", err, calls, tc.want)
			}
		})
	}
	// A head that goes backwards after records were taken.
	p, c, f := newRing(t, 4096)
	if err := p.Put([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	takeAll(t, c)
	mem, err := mapRaw(f)
	if err != nil {
		t.Fatal(err)
	}
	*(*uint64)(unsafe.Pointer(&mem[0])) = 1
	if err := c.Take(func([]byte) error { return nil }); err == nil {
		t.Fatal("head going backwards accepted")
	}
}

func TestRingFileSizes(t *testing.T) {
	for _, size := range []int{1, 4095, 5000, 2 << 30} {
		if f, err := workerproto.NewRingFile(size); err == nil {
			f.Close()
			t.Errorf("NewRingFile(%d) accepted", size)
		}
	}
	f, err := os.CreateTemp(t.TempDir(), "ring")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(64 + 5000); err != nil {
		t.Fatal(err)
	}
	if _, err := workerproto.MapRing(f); err == nil {
		t.Error("MapRing of a file of a bad size accepted")
	}
}

// TestRingFileSealed: the size of a ring file is fixed, so a worker
// holding its descriptor cannot shrink it under the server's mapping
// (which would make the server's next access SIGBUS) nor grow it.
func TestRingFileSealed(t *testing.T) {
	_, c, f := newRing(t, 4096)
	for _, size := range []int64{0, 64, 64 + 4096 + 1} {
		if err := f.Truncate(size); err == nil {
			t.Errorf("truncate of the ring file to %d bytes accepted", size)
		}
	}
	if got := takeAll(t, c); len(got) != 0 {
		t.Fatalf("took %q", got)
	}
	if !workerproto.IsRingFile(int(f.Fd())) {
		t.Error("IsRingFile(ring file) = false")
	}
	tmp, err := os.CreateTemp(t.TempDir(), "ring")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	if workerproto.IsRingFile(int(tmp.Fd())) {
		t.Error("IsRingFile(plain file) = true")
	}
	if workerproto.IsRingFile(1 << 20) {
		t.Error("IsRingFile(closed descriptor) = true")
	}
}

// ringChildEnv makes this test binary the producer of
// TestRingSurvivesAKilledProducer.
const ringChildEnv = "WORKERPROTO_TEST_RING_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(ringChildEnv) != "" {
		os.Exit(ringChild())
	}
	goleak.VerifyTestMain(m)
}

// ringChild maps the ring on fd 3, puts 1000 records, says so on stdout
// and waits to be killed.
func ringChild() int {
	r, err := workerproto.MapRing(os.NewFile(3, "ring"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	for i := range 1000 {
		if err := r.Put([]byte("record " + strconv.Itoa(i))); err != nil {
			fmt.Println(err)
			return 1
		}
	}
	fmt.Println("put")
	select {}
}

// TestRingSurvivesAKilledProducer: every record a worker put is read by the
// server after the worker was killed with SIGKILL.
func TestRingSurvivesAKilledProducer(t *testing.T) {
	_, c, f := newRing(t, 1<<16)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), ringChildEnv+"=1")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 4)
	if _, err := out.Read(line); err != nil || string(line[:3]) != "put" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, %v", line, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	got := takeAll(t, c)
	if len(got) != 1000 || got[0] != "record 0" || got[999] != "record 999" {
		t.Fatalf("took %d records after the kill", len(got))
	}
}

func BenchmarkRingPutTake(b *testing.B) {
	p, c, _ := newRing(b, workerproto.DefaultRingSize)
	rec := bytes.Repeat([]byte("r"), 200)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := p.Put(rec); err != nil {
			if err := c.Take(func([]byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
			if err := p.Put(rec); err != nil {
				b.Fatal(err)
			}
		}
	}
}
