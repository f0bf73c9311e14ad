package hub

import (
	"fmt"
	"testing"

	"github.com/wsdest/wsdest/internal/message"
)

// lockProbeView records, from inside Apply, whether a shard's lock or its
// client's lock was held: AddClient and a client's teardown (the poller's
// goroutine on a hang-up) take the shard's, the client's writer its own.
type lockProbeView struct {
	h      *Hub
	c      *Client // the probe's client, set once added
	locked []string
}

func (v *lockProbeView) Apply(m *message.Message) *message.Message {
	for i := range v.h.shards {
		if !v.h.shards[i].mu.TryLock() {
			v.locked = append(v.locked, fmt.Sprintf("shard %d", i))
			continue
		}
		v.h.shards[i].mu.Unlock()
	}
	if v.c != nil {
		if !v.c.mu.TryLock() {
			v.locked = append(v.locked, "client")
		} else {
			v.c.mu.Unlock()
		}
	}
	return m
}

// TestViewAppliedWithNoLockHeld: a view (a CEL evaluation, a projection)
// runs with neither a shard's lock nor its client's held, so that what it
// costs never holds up AddClient, a teardown, or a writer.
func TestViewAppliedWithNoLockHeld(t *testing.T) {
	h := New(Config{MaxQueueBytes: 1 << 20})
	v := &lockProbeView{h: h}
	v.c = h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v}})
	h.Wants()
	h.Publish([]*message.Message{msg("k", "x"), msg("k", "y")})
	if len(v.locked) > 0 {
		t.Fatalf("View.Apply ran under a lock another path takes: %v", v.locked)
	}
	if got := len(queued(v.c)); got != 2 {
		t.Fatalf("queued %d messages, want 2", got)
	}
}

// orderView logs every Apply, its view and message, in one shared log.
type orderView struct {
	name string
	log  *[]string
}

func (v *orderView) Apply(m *message.Message) *message.Message {
	*v.log = append(*v.log, fmt.Sprintf("%s@%d", v.name, m.Offset))
	return m
}

// TestViewsAppliedMessageByMessage: every view of a piece is applied to
// one message before any is applied to the next, so that the views of a
// record read it while it is decoded (the view package keeps a few
// records, not a whole piece), and each view once per message.
func TestViewsAppliedMessageByMessage(t *testing.T) {
	h := New(Config{MaxQueueBytes: 1 << 20})
	var log []string
	a, b := &orderView{"a", &log}, &orderView{"b", &log}
	for _, v := range []View{a, b, a, b} {
		h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v}})
	}
	var msgs []*message.Message
	for i := range 3 {
		m := msg("k", "x")
		m.Offset = int64(i)
		msgs = append(msgs, m)
	}
	h.Wants()
	h.Publish(msgs)
	if len(log) != 6 {
		t.Fatalf("%d applications, want 6 (each view once per message): %v", len(log), log)
	}
	for i := range 3 {
		x, y := log[2*i], log[2*i+1]
		want := fmt.Sprintf("@%d", i)
		if x[1:] != want || y[1:] != want || x == y {
			t.Fatalf("applications %v: not every view on message %d before the next", log, i)
		}
	}
}
