package sshserver

import "net/netip"

// Defaults of the unauthenticated-connection caps.
const (
	DefaultMaxStartups          = 100
	DefaultMaxStartupsPerSource = 10
)

// startups caps the connections that have not authenticated yet, in total
// and per source address, as OpenSSH's MaxStartups and
// PerSourceMaxStartups do. The per-source cap keeps one noisy source from
// taking every slot, so others can still log in. A slot is held from
// accept until the connection authenticates, closes or runs out of login
// grace time.
type startups = keyedLimit[netip.Addr]

func newStartups(max, perSource int) *startups {
	if max <= 0 {
		max = DefaultMaxStartups
	}
	if perSource <= 0 {
		perSource = min(DefaultMaxStartupsPerSource, max)
	}
	return newKeyedLimit[netip.Addr](max, perSource, "unauthenticated connections", "from this source")
}
