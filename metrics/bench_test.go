package metrics_test

import (
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/metrics"
)

// BenchmarkDecision is the cost the server pays per decision line with
// metrics on.
func BenchmarkDecision(b *testing.B) {
	m := metrics.New()
	for b.Loop() {
		m.Decision("read", true)
	}
}

// BenchmarkScrape is one scrape of a registry with a few series of each
// metric, the Go and process collectors included.
func BenchmarkScrape(b *testing.B) {
	m := metrics.New()
	for _, a := range []string{"read", "list", "stat", "write", "exec"} {
		m.Decision(a, true)
		m.Decision(a, false)
	}
	m.SessionEnded("script", 0)
	m.ScriptRan(20 * time.Millisecond)
	m.PolicyLoaded("sha256:0")
	h := m.Handler()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		_, _ = io.Copy(io.Discard, w.Body)
	}
}
