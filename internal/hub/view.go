package hub

import (
	"sync"

	"github.com/wsdest/wsdest/internal/message"
)

// View narrows what a client receives beyond its keys and grant: a filter
// of records and a projection of their values (package view implements
// it; the hub knows nothing of what it does). A client's view is applied
// after its keys and grant matched a record, so it never widens them;
// notices reach every client with a frame for them, view or not.
//
// Apply returns nil to drop m, m itself to deliver it unchanged, or a
// message for the same record (sharing m's Key, Partition, Offset, Row,
// Rows, Timestamp and Origin) with frames of its own. It must be safe for
// concurrent use: Publish calls it, and so does a catch-up (history).
// A View must be comparable (a pointer, as package view's are): each
// distinct View (by interface equality) is applied once per message of a
// Publish, the first time a client of it takes the message, and
// every client of the view shares the result, its frames with it.
type View interface {
	Apply(m *message.Message) *message.Message
}

// viewSlot is one distinct View among the hub's clients: the clients of
// the view share it, and with it what Apply made of each message of the
// current Publish.
type viewSlot struct {
	view View
	refs int // clients of the view; guarded by the hub's viewsMu

	// Owned by the publishing goroutine (Publish).
	seq  uint64             // the Publish out is for
	from int                // where in it the piece out is for starts
	out  []*message.Message // per message of that piece: nil not applied yet, dropped, or Apply's result
}

// dropped marks, in viewSlot.out, a message the view dropped.
var dropped = new(message.Message)

// views is the hub's registry of viewSlots.
type views struct {
	mu    sync.Mutex
	slots map[View]*viewSlot // guarded by mu
}

// acquire returns v's slot, one more client counted.
func (vs *views) acquire(v View) *viewSlot {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.slots == nil {
		vs.slots = make(map[View]*viewSlot)
	}
	s := vs.slots[v]
	if s == nil {
		s = &viewSlot{view: v}
		vs.slots[v] = s
	}
	s.refs++
	return s
}

// release counts a client of s gone, forgetting s with its last.
func (vs *views) release(s *viewSlot) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	s.refs--
	if s.refs == 0 {
		delete(vs.slots, s.view)
	}
}

// apply returns what the view makes of msgs[i], msgs the piece from from
// on of the Publish numbered seq (publishViewed): applied the first time it is
// asked for, then shared. nil when the view drops it. Publishing
// goroutine only.
func (s *viewSlot) apply(msgs []*message.Message, i, from int, seq uint64) *message.Message {
	if s.seq != seq || s.from != from || len(s.out) != len(msgs) {
		s.seq, s.from = seq, from
		if cap(s.out) >= len(msgs) {
			s.out = s.out[:len(msgs)]
			clear(s.out)
		} else {
			s.out = make([]*message.Message, len(msgs))
		}
	}
	d := s.out[i]
	if d == nil {
		if d = s.view.Apply(msgs[i]); d == nil {
			d = dropped
		}
		s.out[i] = d
	}
	if d == dropped {
		return nil
	}
	return d
}

// publishViewed is Publish for the clients with a view: msgs in pieces of
// at most maxBatch messages, each to every such client before the next,
// so that what a view made of the messages is held for one piece at a
// time (viewSlot.out), however long the Publish (a record of many rows).
func (h *Hub) publishViewed(msgs []*message.Message, seq uint64) uint64 {
	var n uint64
	for from := 0; from < len(msgs); from += maxBatch {
		piece := msgs[from:min(from+maxBatch, len(msgs))]
		for i := range h.shards {
			s := &h.shards[i]
			s.mu.RLock()
			for _, c := range s.viewed {
				if c.from < seq {
					n += c.enqueueView(piece, from, seq)
				}
			}
			s.mu.RUnlock()
		}
	}
	return n
}

// enqueueView queues, for a client with a view, what its view makes of
// the messages of msgs (the piece from from on of a Publish) it takes, and returns how many it queued. The view
// is applied before the client's lock is taken: a filter's evaluation
// never holds up the client's writer.
func (c *Client) enqueueView(msgs []*message.Message, from int, seq uint64) uint64 {
	slot := c.sub.view
	for i, m := range msgs {
		if m.Notice() || c.sub.matches(m.Key) {
			slot.apply(msgs, i, from, seq)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.parked {
		return 0
	}
	var n uint64
	for i, m := range msgs {
		if !m.Notice() && !c.sub.matches(m.Key) {
			continue
		}
		d := m
		if !m.Notice() {
			if d = slot.out[i]; d == dropped {
				continue
			}
		}
		if !c.takes(d, nil) {
			continue
		}
		if !c.offerLocked(d, seq) {
			break
		}
		n++
	}
	c.wakeLocked()
	return n
}

// View returns the client's view, nil when it has none, for a catch-up
// to apply to what it pushes (Push does not).
func (c *Client) View() View {
	if c.sub.view == nil {
		return nil
	}
	return c.sub.view.view
}
