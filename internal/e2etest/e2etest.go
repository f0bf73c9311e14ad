// Package e2etest holds the helpers of wsdest's end-to-end tests: an
// in-process Kafka broker (franz-go's kfake) over TCP, a producer that waits
// for acks, the real service started from an environment map, WebSocket
// clients that read frames under a deadline, and a goroutine-safe log
// buffer.
//
// It is imported only by tests. Every helper takes the test's testing.TB,
// fails the test on error and registers its own cleanup, so a test reads as
// the scenario it checks. No helper sleeps: every wait is for a condition,
// bounded by Wait.
package e2etest

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Wait bounds every wait in the helpers. It only ever fails a broken test;
// a passing run finishes far sooner, so it is generous enough for a loaded
// machine running under -race.
const Wait = 20 * time.Second

// poll is the interval at which Eventually re-checks its condition.
const poll = 5 * time.Millisecond

// Context returns a context that ends after Wait or with the test. It is
// already done in t.Cleanup functions, which run after the test's end.
func Context(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), Wait)
}

// Eventually re-checks cond until it holds, and fails the test if it does
// not within Wait.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if err := WaitFor(t.Context(), Wait, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s", Wait, what)
	}
}

// WaitFor re-checks cond until it holds, ctx ends or d passes. It is the
// goroutine-safe core of Eventually, for code that must not call t.Fatal.
func WaitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// LogBuffer collects log output. It is safe for concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the lines that contain substr.
func (b *LogBuffer) Lines(substr string) []string {
	var out []string
	for l := range strings.Lines(b.String()) {
		if strings.Contains(l, substr) {
			out = append(out, strings.TrimSuffix(l, "\n"))
		}
	}
	return out
}

// Logger returns a text logger writing to b at level.
func (b *LogBuffer) Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: level}))
}

// DumpOnFailure logs b's content at the end of a failed test.
func (b *LogBuffer) DumpOnFailure(t testing.TB, name string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, b.String())
		}
	})
}
