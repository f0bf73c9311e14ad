package hub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/message"
)

// Rated clients of groups of every key, of exact keys, of grants, of
// notices only and of odd keys (the index: exact, keyed) come and go,
// fresh and resumed, while one goroutine publishes records and notices
// and the groups' timers hand on, with slow members and conflation: no race, no deadlock, each client's messages in
// publish order without duplicates, every notice published while it was
// a joined member that it received at most once, the gauge never
// negative, and the index empty at the end.
func TestRateIndexChurn(t *testing.T) {
	h := New(Config{PingInterval: -1, WriteTimeout: time.Hour, MaxQueueBytes: 4 << 10, Conflate: true,
		ConflatedNotice: envNotice(`{"notice":"conflated"}`), CaughtUpNotice: envNotice(`{"notice":"caught_up"}`)})
	var pubMu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var bad sync.Map
	wg.Add(1)
	go func() {
		defer wg.Done()
		keys := []string{"k0", "k1", "k2", "k2x", "k3", oddKey}
		for i := 0; ctx.Err() == nil; i++ {
			var batch []*message.Message
			for j := range 1 + i%4 {
				n := i*4 + j
				if n%13 == 0 {
					batch = append(batch, groupMsg(fmt.Sprint("notice-", n), n, true))
					continue
				}
				batch = append(batch, groupMsg(keys[(i+j)%len(keys)], n, false))
			}
			pubMu.Lock()
			h.Wants()
			h.Publish(batch)
			pubMu.Unlock()
			if g := h.Stats().Conflating; g < 0 {
				bad.Store(fmt.Sprintf("gauge %d", g), true)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	view := &testView{keep: `"k"`}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for ctx.Err() == nil {
				sub := groupSubs[rng.IntN(len(groupSubs))]
				sub.MaxRate = []float64{1000, 500, 333}[rng.IntN(3)]
				sub.Shape = message.ShapeEnvelope
				if rng.IntN(3) == 0 {
					sub.View = view
				}
				var conn interface {
					Conn
					deliveries() []delivery
				} = &timedConn{}
				if rng.IntN(2) == 0 {
					conn = &slowConn{bps: 20000}
				}
				park := rng.IntN(2) == 0
				c := h.AddClient(conn, ClientOptions{Sub: sub, Park: park})
				if park {
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
					pubMu.Lock()
					c.Join()
					pubMu.Unlock()
				}
				time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
				c.Abort(ReasonClientClosed)
				last := -1
				cs := compile(sub)
				for _, d := range conn.deliveries() {
					var r rated
					if _, err := fmt.Sscanf(d.text, `{"k":%q,"i":%d}`, &r.K, &r.I); err != nil {
						continue
					}
					if r.I <= last {
						bad.Store(fmt.Sprintf("client %d: index %d after %d", c.ID(), r.I, last), true)
					}
					if r.I%13 != 0 && !cs.matches([]byte(r.K)) {
						bad.Store(fmt.Sprintf("client %d (%v): got key %q", c.ID(), sub.Keys, r.K), true)
					}
					last = r.I
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("deadlock")
	}
	bad.Range(func(k, _ any) bool { t.Error(k); return true })
	if !spinUntil(func() bool { return h.Stats().Clients == 0 }) {
		t.Fatalf("%d clients left", h.Stats().Clients)
	}
	if g := h.Stats().Conflating; g != 0 {
		t.Errorf("conflating gauge %d with no client", g)
	}
	h.rates.mu.Lock()
	n := len(h.rates.groups) + len(h.rates.keyed) + len(h.rates.scan) + len(h.rates.viewed) + len(h.rates.exact)
	h.rates.mu.Unlock()
	if n != 0 {
		t.Fatalf("rate index not empty: %d", n)
	}
	st := h.Stats()
	t.Logf("clients %d conflations %d", st.Accepted, st.Conflations)
}
