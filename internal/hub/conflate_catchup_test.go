package hub

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// turnConn takes any number of bytes per write but each write costs a
// fixed turn (as a writer's turn in a loaded pool does): batching is what
// lets a client keep up.
type turnConn struct {
	timedConn
	turn time.Duration
}

func (c *turnConn) Write(b []byte) (int, error) {
	time.Sleep(c.turn)
	return c.timedConn.Write(b)
}

// A client that was conflated (it stalled) and whose link is now as fast
// as that of a client that keeps up catches up while the topic runs: its
// pieces grow while its link takes them at once (latest.resize), as the
// batches of a client that is not conflated grow with its backlog.
func TestConflatedFastLinkCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour, Conflate: true, MaxQueueBytes: 256 << 10,
			ConflatedNotice: envNotice(`{"notice":"conflated"}`), CaughtUpNotice: envNotice(`{"notice":"caught_up"}`)})
		fast := &turnConn{turn: time.Millisecond}
		h.AddClient(fast, ClientOptions{Sub: Subscription{All: true, Shape: message.ShapeEnvelope}})
		late := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, Shape: message.ShapeEnvelope}}) // stalled: no connection yet
		pad := strings.Repeat("x", 1000)
		n := 0
		publish := func() {
			var batch []*message.Message
			for range 2 { // 2 KB a ms
				m := ratedMsg(fmt.Sprint("k", n%200), n)
				m.Frames[message.ShapeEnvelope] = wsframe.Text([]byte(fmt.Sprintf(`{"k":"k%d","i":%d,"p":%q}`, n%200, n, pad)))
				batch = append(batch, m)
				n++
			}
			h.Publish(batch)
		}
		for range 500 {
			publish()
			time.Sleep(time.Millisecond)
		}
		if h.Stats().Conflating != 1 {
			t.Fatalf("setup: conflating %d", h.Stats().Conflating)
		}
		lc := &turnConn{turn: time.Millisecond}
		late.Attach(lc)    // from now on as fast a link as fast's
		for range 10_000 { // 10 s more of the topic
			publish()
			time.Sleep(time.Millisecond)
		}
		synctest.Wait()
		fastGot := len(fast.deliveries())
		caughtUp := false
		for _, d := range lc.deliveries() {
			caughtUp = caughtUp || d.text == `{"notice":"caught_up"}`
		}
		t.Logf("fast client: %d of %d messages; conflated client: %d messages, caught up %v", fastGot, n, len(lc.deliveries()), caughtUp)
		if !caughtUp {
			t.Errorf("a conflated client on a link that carries the whole topic (the other client got %d of %d) never caught up in 10 s", fastGot, n)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		late.Abort(ReasonClientClosed)
		synctest.Wait()
	})
}
