//go:build race

package js

// raceEnabled: the race detector multiplies resident memory, so memory
// measurements skip under it.
const raceEnabled = true
