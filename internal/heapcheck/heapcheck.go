// Package heapcheck looks at the heap for tests and benchmarks: whether a
// string keeps a raw key reachable (for tests that prove no record holds
// on to the key it was made from), and the heap's size once collected
// (for measurements of what a structure keeps).
package heapcheck

import (
	"runtime"
	"unsafe"
)

// Settled returns the memory statistics after two collections, so that
// HeapAlloc and HeapObjects count what is reachable, as nearly as the
// runtime can tell: the first collection may leave objects that
// finalizers or the sweeper release only by the second.
func Settled() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// Within reports whether the bytes of s lie inside those of raw: then s is
// a slice of raw, and keeps the whole of raw reachable for as long as s
// lives, wherever s is stored.
func Within(s, raw string) bool {
	if len(s) == 0 || len(raw) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(raw)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return p >= start && p < start+uintptr(len(raw))
}
