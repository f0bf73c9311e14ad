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

// Rated clients of a few groups come and go (fresh and
// resumed, with Join under the publisher's lock as the tap does), while
// one goroutine publishes and the groups' timers hand on (1 ms windows):
// no race, no deadlock, and each client's records arrive in publish order
// without duplicates.
func TestRateGroupChurn(t *testing.T) {
	h := New(Config{PingInterval: -1, WriteTimeout: time.Hour, MaxQueueBytes: 1 << 20, Conflate: true})
	var pubMu sync.Mutex // the tap's lock
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var published int
	wg.Add(1)
	go func() { // the publisher
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			var batch []*message.Message
			for j := range 1 + i%4 {
				batch = append(batch, ratedMsg(fmt.Sprint("k", (i+j)%7), i*4+j))
			}
			pubMu.Lock()
			h.Wants()
			h.Publish(batch)
			published++
			pubMu.Unlock()
			time.Sleep(50 * time.Microsecond)
		}
	}()
	rates := []float64{1000, 500, 333}
	view := &testView{keep: `"k"`}
	var bad sync.Map
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for ctx.Err() == nil {
				sub := Subscription{All: rng.IntN(2) == 0, Keys: []string{"k1", "k2*"}, MaxRate: rates[rng.IntN(len(rates))]}
				if rng.IntN(3) == 0 {
					sub.View = view
				}
				conn := &timedConn{}
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
				for _, d := range conn.deliveries() {
					var r rated
					if _, err := fmt.Sscanf(d.text, `{"k":%q,"i":%d}`, &r.K, &r.I); err != nil {
						continue
					}
					if r.I <= last {
						bad.Store(fmt.Sprintf("client %d: index %d after %d", c.ID(), r.I, last), true)
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
	case <-time.After(30 * time.Second):
		t.Fatal("deadlock: workers did not finish")
	}
	bad.Range(func(k, _ any) bool { t.Error(k); return true })
	if !spinUntil(func() bool { return h.Stats().Clients == 0 }) {
		t.Fatalf("%d clients left", h.Stats().Clients)
	}
	h.rates.mu.Lock()
	n := len(h.rates.groups)
	h.rates.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d groups left after every client left", n)
	}
	t.Logf("%d publishes, %d clients", published, h.Stats().Accepted)
}
