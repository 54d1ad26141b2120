package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values shared by several metrics.
const (
	// None is the transport or exit label of a session that ran nothing.
	None = "none"
	// Other is the value of a label the caller could not name from its
	// bounded set.
	Other = "other"
)

// ScriptDurationBuckets are the buckets of keyhole_script_duration_seconds,
// in seconds: from a one-file read (tens of milliseconds end to end) to
// scripts that run into the default wall-clock limit.
var ScriptDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// Metrics holds keyhole's collectors in a registry of their own.
type Metrics struct {
	reg *prometheus.Registry

	sessions        *prometheus.CounterVec
	sessionsOpen    prometheus.Gauge
	sessionsRefused *prometheus.CounterVec
	decisions       *prometheus.CounterVec
	authRefusals    *prometheus.CounterVec
	scriptDuration  prometheus.Histogram
	limitHits       *prometheus.CounterVec
	poolSize        prometheus.Gauge
	parked          prometheus.Gauge
	workerStarts    *prometheus.CounterVec
	policyReloads   *prometheus.CounterVec
	policyInfo      *prometheus.GaugeVec
	policyReloadOK  prometheus.Gauge
	auditWritable   prometheus.Gauge

	// policyMu guards policyVersion, the one version label of policyInfo.
	policyMu      sync.Mutex
	policyVersion string
}

// New returns Metrics with every collector registered, the Go runtime's
// and this process's collectors included. Counters start at zero; the
// labelled ones have no series until their first event, apart from the
// result labels of worker starts and policy reloads, which start at zero
// so that an alert on their rate sees them from the first scrape.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyhole_sessions_total",
		Help: "Sessions ended, by transport (script, sftp, none) and exit status (none when no script ran).",
	}, []string{"transport", "exit"})
	m.sessionsOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keyhole_sessions_open",
		Help: "Session channels open now.",
	})
	m.sessionsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyhole_sessions_refused_total",
		Help: "Session channels refused before they opened, by reason.",
	}, []string{"reason"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyhole_decisions_total",
		Help: "Authorization decisions written to the audit log, by action and outcome (allow, deny).",
	}, []string{"action", "outcome"})
	m.authRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyhole_auth_refusals_total",
		Help: "Connections or keys refused before authentication completed, by reason.",
	}, []string{"reason"})
	m.scriptDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "keyhole_script_duration_seconds",
		Help:    "Time from taking a worker to the script's end, as the server measured it.",
		Buckets: ScriptDurationBuckets,
	})
	m.limitHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyhole_limit_hits_total",
		Help: "Scripts ended with LIMIT_EXCEEDED, by the limit that ended them.",
	}, []string{"limit"})
	m.poolSize = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keyhole_worker_pool_size",
		Help: "Started workers idle in the pool, waiting for a script.",
	})
	m.parked = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keyhole_worker_parked",
		Help: "Workers parked for the next script of the principal whose script they ran.",
	})
	m.workerStarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyhole_worker_starts_total",
		Help: "Worker processes started, by result (ok, failed).",
	}, []string{"result"})
	m.policyReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyhole_policy_reloads_total",
		Help: "Policy reloads, by result (ok: loaded or unchanged; failed: refused, the last good set kept).",
	}, []string{"result"})
	m.policyInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keyhole_policy_info",
		Help: "The policy set in force: 1, with its version as a label.",
	}, []string{"version"})
	m.policyReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keyhole_policy_last_reload_ok",
		Help: "1 when the last policy reload (or the load at start) succeeded, 0 when it was refused.",
	})
	m.auditWritable = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keyhole_audit_log_writable",
		Help: "1 while the audit log takes lines, 0 while it does not (sessions and operations are refused).",
	})
	for _, r := range []string{"ok", "failed"} {
		m.workerStarts.WithLabelValues(r)
		m.policyReloads.WithLabelValues(r)
	}
	m.policyReloadOK.Set(1)
	m.auditWritable.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.sessions, m.sessionsOpen, m.sessionsRefused, m.decisions, m.authRefusals, m.scriptDuration,
		m.limitHits, m.poolSize, m.parked, m.workerStarts, m.policyReloads, m.policyInfo, m.policyReloadOK,
		m.auditWritable,
	)
	return m
}

// Registry returns the registry that holds the collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus' exposition formats. At most
// maxInFlight scrapes are answered at once (the rest get 503), each within
// scrapeTimeout.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: maxInFlight,
		Timeout:             scrapeTimeout,
	})
}

// Bounds of the handler.
const (
	maxInFlight   = 4
	scrapeTimeout = 10 * time.Second
)

// SessionOpened counts a session channel that has opened.
func (m *Metrics) SessionOpened() {
	if m == nil {
		return
	}
	m.sessionsOpen.Inc()
}

// SessionEnded counts a session that has ended: transport is "script",
// "sftp" or None, exit the script's exit status or negative when none
// ran.
func (m *Metrics) SessionEnded(transport string, exit int) {
	if m == nil {
		return
	}
	e := None
	if exit >= 0 {
		e = strconv.Itoa(exit)
	}
	if transport == "" {
		transport = None
	}
	m.sessions.WithLabelValues(transport, e).Inc()
	m.sessionsOpen.Dec()
}

// SessionRefused counts a session channel refused before it opened.
func (m *Metrics) SessionRefused(reason string) {
	if m == nil {
		return
	}
	m.sessionsRefused.WithLabelValues(reason).Inc()
}

// AuthRefused counts a refused connection or key.
func (m *Metrics) AuthRefused(reason string) {
	if m == nil {
		return
	}
	m.authRefusals.WithLabelValues(reason).Inc()
}

// Decision counts one decision line written to the audit log.
func (m *Metrics) Decision(action string, allow bool) {
	if m == nil {
		return
	}
	outcome := "deny"
	if allow {
		outcome = "allow"
	}
	m.decisions.WithLabelValues(action, outcome).Inc()
}

// ScriptRan records how long a script ran in its worker.
func (m *Metrics) ScriptRan(d time.Duration) {
	if m == nil {
		return
	}
	m.scriptDuration.Observe(d.Seconds())
}

// LimitHit counts a script ended by limit.
func (m *Metrics) LimitHit(limit string) {
	if m == nil {
		return
	}
	m.limitHits.WithLabelValues(limit).Inc()
}

// WorkerStarted counts a worker start, successful or not.
func (m *Metrics) WorkerStarted(ok bool) {
	if m == nil {
		return
	}
	r := "failed"
	if ok {
		r = "ok"
	}
	m.workerStarts.WithLabelValues(r).Inc()
}

// IdleWorkers sets the number of idle workers in the pool.
func (m *Metrics) IdleWorkers(n int) {
	if m == nil {
		return
	}
	m.poolSize.Set(float64(n))
}

// ParkedWorkers sets the number of workers parked for reuse.
func (m *Metrics) ParkedWorkers(n int) {
	if m == nil {
		return
	}
	m.parked.Set(float64(n))
}

// PolicyLoaded records the version of the policy set in force, replacing
// the previous one's series.
func (m *Metrics) PolicyLoaded(version string) {
	if m == nil {
		return
	}
	m.policyMu.Lock()
	defer m.policyMu.Unlock()
	if version == m.policyVersion {
		return
	}
	if m.policyVersion != "" {
		m.policyInfo.DeleteLabelValues(m.policyVersion)
	}
	m.policyVersion = version
	m.policyInfo.WithLabelValues(version).Set(1)
}

// PolicyReloaded counts a reload; version is the set in force after it
// (the last good one when err is not nil).
func (m *Metrics) PolicyReloaded(version string, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.policyReloads.WithLabelValues("failed").Inc()
		m.policyReloadOK.Set(0)
	} else {
		m.policyReloads.WithLabelValues("ok").Inc()
		m.policyReloadOK.Set(1)
	}
	m.PolicyLoaded(version)
}

// AuditWritable records whether the audit log takes lines.
func (m *Metrics) AuditWritable(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.auditWritable.Set(1)
	} else {
		m.auditWritable.Set(0)
	}
}
