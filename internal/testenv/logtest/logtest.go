// Package logtest has what tests need to read logs that servers write concurrently. Import it only
// from _test.go files.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer collects writes from any number of goroutines and can be read at any time.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
