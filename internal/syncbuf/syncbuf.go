// Package syncbuf is a bytes.Buffer safe for concurrent use: the log
// destination that tests read while a server's goroutines write to it.
package syncbuf

import (
	"bytes"
	"sync"
)

// A Buffer is a byte buffer whose methods may be called from several
// goroutines at once. The zero Buffer is empty and ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Reset empties the buffer, so a test reads only what is written next.
func (b *Buffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
