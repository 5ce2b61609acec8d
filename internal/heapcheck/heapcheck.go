// Package heapcheck tells whether a string keeps a raw key reachable: for
// tests that prove no record holds on to the key it was made from.
package heapcheck

import "unsafe"

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
