package hub

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest/internal/message"
)

// An announcement is queued behind what the client already holds: a
// rated member whose writer is busy holds its group's hand-over in a
// pending set of its own, and an announcement made after that record was
// published does not overtake it.
func TestAnnounceBehindQuietHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
		c := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, MaxRate: 1, Shape: message.ShapeEnvelope}})
		h.Publish([]*message.Message{ratedMsg("a", 0)}) // handed on at once: queued (no conn yet)
		h.Publish([]*message.Message{ratedMsg("b", 1)}) // handed on at once: queue busy, held quietly
		c.mu.Lock()
		quiet := c.latest != nil && c.latest.quiet && c.latest.live == 1
		c.mu.Unlock()
		if !quiet {
			t.Fatal("setup: b not held quietly")
		}
		got := announceAndRead(h, c)
		want := `[{"env":{"k":"a","i":0}} {"env":{"k":"b","i":1}} {"notice":"down"}]`
		if fmt.Sprint(got) != want {
			t.Fatalf("got %v, want %s: the announcement overtook a record published before it", got, want)
		}
	})
}

// The same for a conflating client: the announcement waits behind the
// pending set that holds records published before it.
func TestAnnounceBehindConflated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour, Conflate: true, MaxQueueBytes: 1 << 10})
		c := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, Shape: message.ShapeEnvelope}})
		for i := range 40 {
			h.Publish([]*message.Message{ratedMsg(fmt.Sprint("k", i%4), i)})
		}
		if h.Stats().Conflating != 1 {
			t.Fatal("setup: not conflating")
		}
		got := announceAndRead(h, c)
		if len(got) == 0 || got[len(got)-1] != `{"notice":"down"}` {
			t.Fatalf("got %v: the announcement overtook records published before it", got)
		}
	})
}

// announceAndRead announces {"notice":"down"} to h, attaches c, which
// was added without a connection, and returns what c then receives; c is
// closed after. Run it in a synctest bubble.
func announceAndRead(h *Hub, c *Client) []string {
	h.Announce(announcement(`{"notice":"down"}`), false)
	rc := &timedConn{}
	c.Attach(rc)
	time.Sleep(time.Second)
	synctest.Wait()
	var got []string
	for _, d := range rc.deliveries() {
		got = append(got, d.text)
	}
	c.Abort(ReasonClientClosed)
	synctest.Wait()
	return got
}
