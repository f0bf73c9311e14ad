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
	"context"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/testlog"
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

// LogBuffer collects log output; it is testlog.Buffer, safe for
// concurrent use.
type LogBuffer = testlog.Buffer
