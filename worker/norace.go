//go:build !race

package worker

// raceEnabled is true in race-detector builds.
const raceEnabled = false
