// Package testlog is the goroutine-safe log destination of wsdest's tests:
// a buffer that several goroutines may log to while the test reads it. It
// depends on the standard library only, so that any package's tests can
// import it without a cycle.
package testlog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Buffer collects log output. It is safe for concurrent use; the zero
// value is ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
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

// Lines returns the lines that contain substr, without their newlines.
func (b *Buffer) Lines(substr string) []string {
	var out []string
	for l := range strings.Lines(b.String()) {
		if strings.Contains(l, substr) {
			out = append(out, strings.TrimSuffix(l, "\n"))
		}
	}
	return out
}

// Logger returns a text logger writing to b at level.
func (b *Buffer) Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: level}))
}

// DumpOnFailure logs b's content at the end of t if t failed.
func (b *Buffer) DumpOnFailure(t testing.TB, name string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, b.String())
		}
	})
}
