// Package metrics owns keyhole's Prometheus collectors and the HTTP
// endpoint that serves them (config key metrics_listen; docs/metrics.md
// lists every metric).
//
// It is a leaf: it imports nothing of keyhole's. The packages that have
// something to count (sshserver, worker, authz) each declare the small
// observer interface they call, in their own words, and a *Metrics
// satisfies all of them; cmd/keyhole wires it in. A nil observer in those
// packages means no metrics, at the cost of one nil check.
//
// Invariants:
//   - One registry per Metrics, never Prometheus' global default: two
//     servers in one process (tests) count apart.
//   - Every label takes values from a bounded set: the caller maps
//     anything it does not know to "other" (docs/metrics.md lists each
//     set). No label holds a user id, a path, a source address or
//     anything a client chooses, so a client cannot grow the series, and
//     the endpoint names no one.
//   - Every method is safe for concurrent use, and safe on a nil
//     *Metrics (it does nothing).
package metrics
