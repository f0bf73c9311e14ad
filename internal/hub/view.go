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
// Publish calls it with no lock held. A View must be comparable (a
// pointer, as package view's are): each distinct View (by interface
// equality) is applied once to each message of a Publish that some client
// of it takes, every view to a message before the next message, and
// every client of the view shares the result, its frames with it.
type View interface {
	Apply(m *message.Message) *message.Message
}

// viewSlot is one distinct View among the hub's clients: the clients of
// the view share it, and with it what Apply made of each message of the
// current piece of a Publish.
type viewSlot struct {
	view View
	refs int    // clients of the view; guarded by the hub's viewsMu
	ext  extras // {view: the slot}: what its clients without a rate point to

	// Owned by the publishing goroutine (publishViewed), and reset after
	// each piece: a slot holds nothing of a Publish once it is queued.
	seq uint64             // the Publish the slot was collected for
	out []*message.Message // per message of the piece: nil not wanted, wanted, dropped, or Apply's result
}

// Marks in viewSlot.out: a message some client of the view takes (to
// apply), a message the view dropped.
var (
	wanted  = new(message.Message)
	dropped = new(message.Message)
)

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
		s.ext.view = s
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

// viewPublish is the publishing goroutine's scratch for the clients with
// a view: the clients of the current piece and their distinct slots.
// Owned by the publishing goroutine; emptied after each piece.
type viewPublish struct {
	clients []*Client
	slots   []*viewSlot
}

// publishViewed is Publish for the clients with a view: msgs in pieces of
// at most maxBatch messages. For each piece, the clients with a view are
// collected under their shard's read lock, which is then released; each
// distinct view is applied, with no lock held, to the messages some of
// its clients take, message by message and view by view within a
// message (so that the views of a record read it while it is decoded);
// then each client queues its view's results under its own lock, and
// each rate group with a view (groups) is offered them. A view (a CEL
// evaluation, a projection) thus never holds up AddClient or a client's
// teardown, nor a client's writer.
func (h *Hub) publishViewed(msgs []*message.Message, seq uint64, groups []*rateGroup) uint64 {
	var n uint64
	vp := &h.viewPub
	for from := 0; from < len(msgs); from += maxBatch {
		piece := msgs[from:min(from+maxBatch, len(msgs))]
		h.collectViewed(piece, seq, groups)
		applyViews(vp.slots, piece)
		for _, c := range vp.clients {
			n += c.enqueueView(piece, seq)
		}
		for _, g := range groups {
			g.offer(piece, nil, g.key.view.out, seq)
		}
		for _, s := range vp.slots {
			clear(s.out)
			s.out = s.out[:0]
		}
		clear(vp.clients)
		vp.clients, vp.slots = vp.clients[:0], vp.slots[:0]
	}
	return n
}

// collectViewed gathers in h.viewPub the clients with a view that take
// the Publish seq and are neither closing nor parked, their distinct
// slots and those of the rate groups with a view, and in each slot which
// messages of piece its clients or groups take.
func (h *Hub) collectViewed(piece []*message.Message, seq uint64, groups []*rateGroup) {
	vp := &h.viewPub
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for _, c := range s.viewed {
			if c.from < seq && c.live() {
				vp.clients = append(vp.clients, c)
			}
		}
		s.mu.RUnlock()
	}
	for _, c := range vp.clients {
		vp.want(c.sub.view(), c.sub, piece, seq)
	}
	for _, g := range groups {
		vp.want(g.key.view, g.sub, piece, seq)
	}
}

// want marks in slot the messages of piece that sub takes, as wanted,
// first readying the slot for piece (and listing it) when it was not.
func (vp *viewPublish) want(slot *viewSlot, sub *compiled, piece []*message.Message, seq uint64) {
	if slot.seq != seq || len(slot.out) != len(piece) {
		slot.seq = seq
		if cap(slot.out) < len(piece) {
			slot.out = make([]*message.Message, len(piece))
		}
		slot.out = slot.out[:len(piece)]
		vp.slots = append(vp.slots, slot)
	}
	for i, m := range piece {
		if slot.out[i] == nil && !m.Notice() && sub.matches(m.Key) {
			slot.out[i] = wanted
		}
	}
}

// applyViews applies each slot's view to the messages of piece its
// clients take, message by message. No lock is held.
func applyViews(slots []*viewSlot, piece []*message.Message) {
	for i, m := range piece {
		for _, s := range slots {
			if s.out[i] != wanted {
				continue
			}
			d := s.view.Apply(m)
			if d == nil {
				d = dropped
			}
			s.out[i] = d
		}
	}
}

// live reports whether the client is neither closing nor parked.
func (c *Client) live() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closing && !c.parked
}

// enqueueView queues, for a client with a view, what its view made of
// the messages of piece (its slot's results) it takes, and returns how
// many it queued.
func (c *Client) enqueueView(piece []*message.Message, seq uint64) uint64 {
	out := c.sub.view().out
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.parked {
		return 0
	}
	var n uint64
	for i, m := range piece {
		d := m
		if !m.Notice() {
			if !c.sub.matches(m.Key) {
				continue
			}
			if d = out[i]; d == dropped {
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
	if c.sub.view() == nil {
		return nil
	}
	return c.sub.view().view
}
