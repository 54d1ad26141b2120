//go:build !race

package starlarkrt

// raceEnabled is true in race-detector builds.
const raceEnabled = false
