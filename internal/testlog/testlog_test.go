package testlog

import (
	"log/slog"
	"sync"
	"testing"
)

func TestBufferConcurrentAndLines(t *testing.T) {
	var b Buffer
	log := b.Logger(slog.LevelInfo)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { log.Info("hello", "n", i) })
	}
	wg.Wait()
	log.Debug("hidden")
	if got := len(b.Lines("msg=hello")); got != 8 {
		t.Fatalf("%d hello lines, want 8:\n%s", got, b.String())
	}
	if got := b.Lines("hidden"); len(got) != 0 {
		t.Fatalf("debug line logged at info: %q", got)
	}
}
