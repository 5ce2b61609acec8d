//go:build race

package cache

// raceEnabled reports whether the race detector is on: it makes every
// access slow and gives the heap shadow memory, so measurements skip.
const raceEnabled = true
