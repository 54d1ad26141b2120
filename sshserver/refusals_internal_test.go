package sshserver

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
)

func refusalOf(src string) audit.Event {
	return audit.Event{Event: audit.AuthRefused, Source: src, Reason: "not a certificate"}
}

// waitEvents waits until the sink holds at least n events.
func waitEvents(t *testing.T, m *audit.Memory, n int) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ev := m.Events(); len(ev) >= n {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events, want %d: %v", len(m.Events()), n, m.Events())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRefusalsSummariseAfterBurst(t *testing.T) {
	t.Parallel()
	m := &audit.Memory{}
	r := newRefusals(m, time.Now)
	r.window = 100 * time.Millisecond
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for range 1000 {
		r.log(a, refusalOf("192.0.2.1"))
	}
	r.log(b, refusalOf("192.0.2.2"))
	if n := len(m.Events()); n != refusalSame+1 {
		t.Fatalf("%d lines for 1001 refusals within a window, want %d", n, refusalSame+1)
	}
	// The window ends without another refusal: its summary is written.
	ev := waitEvents(t, m, refusalSame+2)
	last := ev[len(ev)-1]
	if last.Event != audit.AuthRefused || last.Source != "192.0.2.1" ||
		!strings.HasPrefix(last.Reason, fmt.Sprintf("%d more refusals from 192.0.2.1 in the last ", 1000-refusalSame)) {
		t.Fatalf("summary = %+v", last)
	}
	// b dropped nothing: no summary for it. A new window starts in full.
	deadline := time.Now().Add(10 * time.Second)
	for r.tracked() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("windows not dropped after they ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.log(a, refusalOf("192.0.2.1"))
	if n := len(m.Events()); n != refusalSame+3 {
		t.Fatalf("%d lines, want %d: %v", n, refusalSame+3, m.Events())
	}
}

func TestRefusalsCloseWritesSummaries(t *testing.T) {
	t.Parallel()
	m := &audit.Memory{}
	r := newRefusals(m, time.Now)
	a := netip.MustParseAddr("192.0.2.1")
	for range refusalSame + 7 {
		r.log(a, refusalOf("192.0.2.1"))
	}
	r.close()
	ev := m.Events()
	if len(ev) != refusalSame+1 || !strings.HasPrefix(ev[len(ev)-1].Reason, "7 more refusals from 192.0.2.1 in the last ") {
		t.Fatalf("events after close: %v", ev)
	}
}

// TestRefusalsBoundedSources floods the limiter from more sources than it
// tracks: it keeps at most maxSources windows, and the rest share one
// window whose summary counts them.
func TestRefusalsBoundedSources(t *testing.T) {
	t.Parallel()
	m := &audit.Memory{}
	r := newRefusals(m, time.Now)
	r.maxSources = 64
	const sources = 20000
	for i := range sources {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		r.log(ip, refusalOf(ip.String()))
		if n := r.tracked(); n > r.maxSources {
			t.Fatalf("%d sources tracked, cap %d", n, r.maxSources)
		}
	}
	lines := len(m.Events())
	if want := r.maxSources + refusalSame; lines != want {
		t.Fatalf("%d lines for %d one-refusal sources, want %d", lines, sources, want)
	}
	r.close()
	ev := m.Events()
	last := ev[len(ev)-1]
	want := fmt.Sprintf("%d more refusals from other sources in the last ", sources-r.maxSources-refusalSame)
	if !strings.HasPrefix(last.Reason, want) {
		t.Fatalf("overflow summary = %q, want prefix %q", last.Reason, want)
	}
}

// TestRefusalsDistinctReasons: distinct reasons from one source are
// written up to the per-source burst; the global budget caps all sources
// together; IPv6 sources in one /64 count as one.
func TestRefusalsDistinctReasons(t *testing.T) {
	t.Parallel()
	m := &audit.Memory{}
	r := newRefusals(m, time.Now)
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 2 * refusalBurst {
		r.log(a, audit.Event{Source: "192.0.2.1", Reason: fmt.Sprintf("key not listed: %d", i)})
	}
	if n := len(m.Events()); n != refusalBurst {
		t.Fatalf("%d lines for %d distinct reasons, want %d", n, 2*refusalBurst, refusalBurst)
	}
	for i := range 3 * refusalBurst {
		ip := netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1))
		r.log(ip, audit.Event{Source: ip.String(), Reason: fmt.Sprintf("key not listed: %d", i)})
	}
	if n := len(m.Events()); n != 2*refusalBurst {
		t.Fatalf("%d lines after one /64 flood, want %d", n, 2*refusalBurst)
	}
	r.total = 3 * refusalBurst
	for i := range 4 * refusalBurst {
		ip := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		r.log(ip, audit.Event{Source: ip.String(), Reason: "not a certificate"})
	}
	if n := len(m.Events()); n != 3*refusalBurst {
		t.Fatalf("%d lines past the global budget of %d", n, 3*refusalBurst)
	}
	if n := r.tracked(); n != 2+4*refusalBurst {
		t.Fatalf("%d sources tracked, want %d", n, 2+4*refusalBurst)
	}
}
