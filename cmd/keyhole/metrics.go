package main

// The optional Prometheus endpoint of "keyhole serve" (config key
// metrics_listen; docs/metrics.md).

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/keyhole-dev/keyhole/metrics"
	"github.com/keyhole-dev/keyhole/sshserver"
)

// *metrics.Metrics is what the server is told through.
var _ sshserver.Observer = (*metrics.Metrics)(nil)

// checkMetricsConfig checks metrics_listen: empty (no endpoint) or
// host:port with a numeric port, the host an IP address, a host name or
// empty (every address), and not the address of listen.
func checkMetricsConfig(c *config, path string) error {
	a := c.MetricsListen
	if a == "" {
		return nil
	}
	bad := func(why string) error {
		return &hinted{fmt.Errorf("config %s: metrics_listen %q: %s", path, a, why),
			`write it as host:port, e.g. metrics_listen = "127.0.0.1:9100", or leave it out for no metrics endpoint`}
	}
	if strings.Contains(a, "://") {
		return bad("a URL, not host:port")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return bad("not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || port != strconv.Itoa(n) {
		return bad("port must be a number from 0 to 65535")
	}
	if host != "" && net.ParseIP(host) == nil && !isHostName(host) {
		return bad("host must be an IP address or a host name")
	}
	if port != "0" && sameAddr(a, c.Listen) {
		return bad("the same address as listen")
	}
	return nil
}

// isHostName reports whether h is a plausible DNS name: labels of
// letters, digits and hyphens.
func isHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// sameAddr reports whether two host:port strings name the same address.
func sameAddr(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	if ia, ib := net.ParseIP(ha), net.ParseIP(hb); ia != nil && ib != nil {
		return ia.Equal(ib)
	}
	return strings.EqualFold(ha, hb)
}

// newMetrics returns the server's collectors, or nil when cfg asks for no
// endpoint.
func newMetrics(cfg *config) *metrics.Metrics {
	if cfg.MetricsListen == "" {
		return nil
	}
	return metrics.New()
}

// startMetrics starts serving m on cfg's metrics_listen; a nil m serves
// nothing and returns nil. An error that later stops the endpoint is
// sent to errc, if it has room, so that serve stops with it.
func startMetrics(cfg *config, m *metrics.Metrics, errc chan<- error) (*metrics.Server, error) {
	if m == nil {
		return nil, nil
	}
	ms, err := metrics.Listen(cfg.MetricsListen, m)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	go func() {
		if err := <-ms.Done(); err != nil {
			select {
			case errc <- err:
			default:
			}
		}
	}()
	return ms, nil
}
