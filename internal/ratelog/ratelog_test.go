package ratelog

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestLimiter walks a fake clock through the windows of a limiter and
// checks each decision and the count of left-out lines it reports.
func TestLimiter(t *testing.T) {
	type step struct {
		after      time.Duration // sleep before the call
		key        string
		ok         bool
		suppressed int
	}
	tests := []struct {
		name  string
		every time.Duration
		burst int
		steps []step
	}{
		{"one a window", time.Minute, 1, []step{
			{0, "", true, 0},
			{time.Second, "", false, 0},
			{time.Second, "", false, 0},
			{time.Minute - 2*time.Second - time.Nanosecond, "", false, 0},
			{time.Nanosecond, "", true, 3}, // the window ends a minute after its first line
			{time.Second, "", false, 0},
			{time.Hour, "", true, 1},
			{time.Hour, "", true, 0},
		}},
		{"a burst a second", time.Second, 3, []step{
			{0, "", true, 0},
			{0, "", true, 0},
			{0, "", true, 0},
			{0, "", false, 0},
			{999 * time.Millisecond, "", false, 0},
			{time.Millisecond, "", true, 2},
			{0, "", true, 0},
		}},
		{"keys apart", time.Minute, 1, []step{
			{0, "a", true, 0},
			{time.Second, "a", false, 0},
			{time.Second, "b", true, 0},
			{time.Second, "a", false, 0},
			{time.Minute, "a", true, 2},
			{0, "b", true, 0},
		}},
		{"burst below one", time.Minute, 0, []step{
			{0, "", true, 0},
			{0, "", false, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(tt.every, tt.burst)
				start := time.Now()
				for i, s := range tt.steps {
					time.Sleep(s.after)
					n, ok := l.Allow(s.key)
					if ok != s.ok || n != s.suppressed {
						t.Errorf("step %d, %q at +%v: %d, %v; want %d, %v", i, s.key, time.Since(start), n, ok, s.suppressed, s.ok)
					}
				}
			})
		})
	}
}

// TestMaxKeys: past maxKeys keys the limiter forgets them all, so that
// keys without bound cannot grow it; a forgotten key starts afresh.
func TestMaxKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(time.Hour, 1)
		l.Allow("first")
		l.Allow("first") // left out
		for i := range maxKeys - 1 {
			if _, ok := l.Allow(fmt.Sprint(i)); !ok {
				t.Fatalf("new key %d not let through", i)
			}
		}
		if _, ok := l.Allow("first"); ok {
			t.Fatal("a remembered key let through within its window")
		}
		l.Allow("one too many")
		if n, ok := l.Allow("first"); !ok || n != 0 {
			t.Errorf("a forgotten key: %d, %v; want 0, true", n, ok)
		}
	})
}

// TestAllowAt: a caller's own clock decides, not the time of day.
func TestAllowAt(t *testing.T) {
	l := New(time.Second, 1)
	t0 := time.Unix(1e9, 0)
	for i := range 5 {
		if _, ok := l.AllowAt("", t0); ok != (i == 0) {
			t.Errorf("call %d at a frozen clock: %v", i, ok)
		}
	}
	if n, ok := l.AllowAt("", t0.Add(time.Second)); !ok || n != 4 {
		t.Errorf("a second later: %d, %v; want 4, true", n, ok)
	}
}

// TestConcurrent: from many goroutines at once, exactly burst lines get
// through in one window and every other call is counted once.
func TestConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(time.Minute, 5)
		var mu sync.Mutex
		through := 0
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				if _, ok := l.Allow("k"); ok {
					mu.Lock()
					through++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		time.Sleep(time.Minute)
		if n, ok := l.Allow("k"); through != 5 || !ok || n != 95 {
			t.Errorf("%d let through, then %d, %v reported; want 5, then 95, true", through, n, ok)
		}
	})
}
