// Package ratelog is wsdest's one limiter of repeated log lines: what bad
// input, a failing broker or a flood of clients would otherwise write by
// the thousand is written at most Burst times per key in each Every, and
// the next line written says how many were left out. The caller keeps the
// logging itself (message, level, attributes); the Limiter only decides.
package ratelog

import (
	"sync"
	"time"
)

// maxKeys bounds the keys a Limiter remembers: keys that vary without
// bound (error texts) cannot grow it for ever. Past it, every key is
// forgotten at once, with the counts of left-out lines it held.
const maxKeys = 256

// Limiter lets at most burst lines per key through in each window of
// every, the window starting at the first line of the key it lets
// through. Safe for concurrent use; its lock is held for a map lookup only.
type Limiter struct {
	every time.Duration
	burst int

	mu   sync.Mutex
	keys map[string]*window // guarded by mu
}

type window struct {
	start      time.Time // when the window began
	lines      int       // lines let through in it
	suppressed int       // lines left out since the last one let through
}

// New returns a Limiter of burst lines (at least 1) per key in every.
func New(every time.Duration, burst int) *Limiter {
	return &Limiter{every: every, burst: max(burst, 1), keys: make(map[string]*window)}
}

// Allow reports whether a line of key may be written now and, if so, how
// many lines of key were left out before it. Callers with one kind of line
// use the key "".
func (l *Limiter) Allow(key string) (suppressed int, ok bool) {
	return l.AllowAt(key, time.Now())
}

// AllowAt is Allow at the time now, for callers that keep their own clock.
func (l *Limiter) AllowAt(key string, now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.keys[key]
	switch {
	case w == nil:
		if len(l.keys) >= maxKeys {
			clear(l.keys)
		}
		w = &window{start: now}
		l.keys[key] = w
	case now.Sub(w.start) >= l.every:
		w.start, w.lines = now, 0
	}
	if w.lines >= l.burst {
		w.suppressed++
		return 0, false
	}
	w.lines++
	n := w.suppressed
	w.suppressed = 0
	return n, true
}
