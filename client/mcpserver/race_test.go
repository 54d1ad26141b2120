//go:build race

package mcpserver_test

// slowdown scales the time bounds of tests under the race detector,
// which makes this code several times slower.
const slowdown = 5
