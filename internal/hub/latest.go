package hub

import (
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// This file is the latest-wins part of a client's queue: the rate bound
// of Subscription.MaxRate, and conflation (Config.Conflate), which keeps a
// client that fell behind instead of closing it. Both hold, per client,
// at most one pending message per key: a newer message of a key
// supersedes (drops) the pending one. Frames stay shared: pending entries
// are the same *message.Message pointers every other client queues; the
// client only chooses which to send, and when.
//
// Pending messages are kept in publish order (a map from key to slot plus
// an ordered slice, compacted) and are handed to the writer strictly in
// that order: a message that supersedes another moves to the end. Nothing
// is handed over while an older pending message waits for its key's
// window. So a message's cursor (its own position) still means
// "everything up to here was delivered or superseded", and a client
// resumed from any cursor it received loses nothing but superseded
// messages. Messages without a key are one key of their own. A record of
// many Quix rows shares its key: its rows supersede each other. Notices
// are never held: they are queued at once, ahead of pending records.
//
// Rate (max_rate=N): a message is queued at once when nothing is pending
// and its key was last handed over at least 1/N ago; otherwise it becomes
// its key's pending message. The writer takes pending messages from the
// head while their key's window has passed and stops at the first that
// has not; a runtime timer (time.AfterFunc: no goroutine until it fires)
// wakes the writer when it has. So each key is handed to the writer at
// most N times a second (the writer may still bunch frames that waited
// for a slow socket), and every key ends at its latest value.
//
// Conflation: where a client over MaxQueueBytes would be closed, it
// switches to conflated mode instead: its queue not yet taken by the
// writer is folded into the pending set, newer messages supersede per
// key, and the writer drains the pending set in publish order, a piece
// (conflateBatchBytes) a turn, so that what waits for the socket stays
// small and what waits in the set keeps being superseded. Envelope and
// SSE clients get {"notice":"conflated"} when it starts and
// {"notice":"caught_up"} once the pending set and the queue are empty.
// The pending set's cost (frame bytes plus entryCost per entry, the
// queue's measure) is bounded by MaxQueueBytes, in either mode: a client
// whose pending set would exceed it (a client of more distinct keys than
// fit) is closed with 1008 "too slow" as before.

// conflateBatchBytes is about the most frame bytes a conflating client
// hands its writer in one turn: small, so that messages wait in the
// pending set, where they are superseded, rather than in the socket.
const conflateBatchBytes = 16 << 10

// slowBatchBytes is about the most frame bytes one write carries with
// Config.Conflate (conflateBatchBytes while the client is conflated): a
// write must finish within WriteTimeout, so a client that reads slowly is
// given small writes, and what waits stays in the queue, where conflation
// can reduce it, not in the socket.
const slowBatchBytes = 64 << 10

// batchBytes returns about the most frame bytes the client's next write
// may carry (see slowBatchBytes); no bound without Config.Conflate. c.mu
// must be held.
func (c *Client) batchBytes() int {
	switch {
	case !c.hub.cfg.Conflate:
		return int(^uint(0) >> 1)
	case c.latest != nil && c.latest.conflating:
		return conflateBatchBytes
	}
	return slowBatchBytes
}

// batchLen returns how many of msgs (at least one) the next write takes:
// at most maxBatch, and about limit bytes of frames.
func (c *Client) batchLen(msgs []*message.Message, limit int) int {
	n := min(maxBatch, len(msgs))
	if !c.hub.cfg.Conflate {
		return n
	}
	bytes := 0
	for i, m := range msgs[:n] {
		bytes += c.Cost(m)
		if bytes >= limit {
			return i + 1
		}
	}
	return n
}

// keySlot is what a client's latest-wins state holds for one key.
type keySlot struct {
	last int64 // hub clock (ns) when the key was last handed to the writer; 0 never
	slot int   // index in latest.order of the key's pending message; -1 none
}

// pending is a message waiting in a client's latest-wins state, with its
// key's slot (so that the head is checked without a map lookup).
type pending struct {
	m *message.Message
	s *keySlot
}

// latest is a client's latest-wins state; every field is guarded by the
// client's mu.
type latest struct {
	interval   int64 // ns between two messages of one key; 0: no rate bound
	conflating bool  // conflated mode (see above)

	keys   map[string]*keySlot // pointers: updated in place, no key string allocated per message
	nilKey keySlot             // the key of messages without one
	// order holds the pending messages in publish order from head on;
	// entries with a nil m were superseded or taken.
	order []pending
	head  int
	live  int // non-nil entries of order
	cost  int // frame bytes plus entryCost of the live entries

	pruneAt int // prune keys when it grows past this (rate only)

	timer   *time.Timer // wakes the writer when the head's window passes; nil until needed
	timerAt int64       // hub clock at which timer fires; 0 when not armed
}

// newLatest returns the state of a client with max_rate rate (0: none).
func newLatest(rate float64) *latest {
	l := &latest{keys: make(map[string]*keySlot), nilKey: keySlot{slot: -1}, pruneAt: 64}
	if rate > 0 {
		l.interval = int64(float64(time.Second) / rate)
	}
	return l
}

// find returns m's key's slot, nil when the key has none.
func (l *latest) find(m *message.Message) *keySlot {
	if m.Key == nil {
		return &l.nilKey
	}
	return l.keys[string(m.Key)]
}

// get returns m's key's slot, made when the key has none.
func (l *latest) get(m *message.Message) *keySlot {
	if s := l.find(m); s != nil {
		return s
	}
	s := &keySlot{slot: -1}
	l.keys[string(m.Key)] = s
	return s
}

// forget drops m's key's slot when it holds nothing worth keeping.
func (l *latest) forget(m *message.Message, s *keySlot) {
	if m.Key != nil && s.slot < 0 && (l.interval == 0 || s.last == 0) {
		delete(l.keys, string(m.Key))
	}
}

// due reports whether a message of key slot s (nil: none) may be handed
// over at now.
func (l *latest) due(s *keySlot, now int64) bool {
	return l.interval == 0 || s == nil || s.last == 0 || now-s.last >= l.interval
}

// sent records that m, of key slot s (nil: none yet), was handed to the
// writer at now (rate only).
func (l *latest) sent(m *message.Message, s *keySlot, now int64) {
	if l.interval == 0 {
		return
	}
	if s == nil {
		s = l.get(m)
	}
	s.last = now
	l.prune(now)
}

// prune forgets keys that have nothing pending and whose window has
// passed (they behave as keys never sent), once the map has doubled since
// the last pruning: the map holds the keys sent within the last interval,
// plus the pending ones.
func (l *latest) prune(now int64) {
	if len(l.keys) < l.pruneAt {
		return
	}
	for k, s := range l.keys {
		if s.slot < 0 && now-s.last >= l.interval {
			delete(l.keys, k)
		}
	}
	l.pruneAt = max(64, 2*len(l.keys))
}

// hold makes m, of key slot s (nil: none yet), its key's pending message,
// superseding the one pending; it returns the cost it added (negative
// when m is smaller than what it superseded) and whether it superseded
// one.
func (l *latest) hold(m *message.Message, s *keySlot, shape message.Shape) (added int, superseded bool) {
	if s == nil {
		s = l.get(m)
	}
	if s.slot >= 0 {
		old := l.order[s.slot].m
		l.order[s.slot] = pending{}
		l.live--
		added -= costOf(old, shape)
		superseded = true
	}
	s.slot = len(l.order)
	l.order = append(l.order, pending{m, s})
	l.live++
	added += costOf(m, shape)
	l.cost += added
	l.compact()
	return added, superseded
}

// compact drops the nil entries of order once they outnumber the live
// ones, so that order stays within twice the number of pending keys.
func (l *latest) compact() {
	if len(l.order) < 32 || len(l.order)-l.head < 2*l.live && l.head < len(l.order)/2 {
		return
	}
	n := 0
	for _, p := range l.order[l.head:] {
		if p.m == nil {
			continue
		}
		p.s.slot = n
		l.order[n] = p
		n++
	}
	clear(l.order[n:])
	l.order, l.head = l.order[:n], 0
}

// headDue returns the first pending message and whether it may be handed
// over at now; a nil m when nothing is pending.
func (l *latest) headDue(now int64) (pending, bool) {
	for l.head < len(l.order) && l.order[l.head].m == nil {
		l.head++
	}
	if l.head == len(l.order) {
		l.order, l.head = l.order[:0], 0
		return pending{}, false
	}
	p := l.order[l.head]
	return p, l.due(p.s, now)
}

// nextDue returns the hub clock at which the head becomes due; 0 when
// nothing is pending.
func (l *latest) nextDue() int64 {
	if l.live == 0 {
		return 0
	}
	p, _ := l.headDue(0)
	return p.s.last + l.interval
}

// take removes the head p (which headDue returned) and records it as
// sent.
func (l *latest) take(p pending, now int64, cost int) {
	l.order[l.head] = pending{}
	l.head++
	l.live--
	l.cost -= cost
	m, s := p.m, p.s
	s.slot = -1
	if l.interval > 0 {
		s.last = now
	}
	l.forget(m, s)
}

// drop discards every pending message and returns how many there were.
func (l *latest) drop() int {
	n := l.live
	clear(l.order)
	l.order, l.head, l.live, l.cost = nil, 0, 0, 0
	clear(l.keys)
	l.nilKey = keySlot{slot: -1}
	if l.timer != nil {
		l.timer.Stop()
		l.timerAt = 0
	}
	return n
}

// offerLatestLocked queues m for a client with latest-wins state (a rate,
// or conflating), as described above; like pushLocked it reports false
// when the client was closed. c.mu must be held.
func (c *Client) offerLatestLocked(m *message.Message, seq uint64) bool {
	l := c.latest
	if m.Notice() {
		return c.pushLocked(m, seq)
	}
	now := c.hub.clock()
	s := l.find(m)
	if !l.conflating && l.live == 0 && l.due(s, now) {
		if !c.pushLocked(m, seq) {
			return false
		}
		if c.latest.conflating {
			return true // pushLocked started conflation and held m
		}
		l.sent(m, s, now)
		return true
	}
	return c.holdLocked(m, s, now)
}

// holdLocked makes m its key's pending message, closing the client with
// 1008 "too slow" when the pending set would cost more than MaxQueueBytes.
// c.mu must be held.
func (c *Client) holdLocked(m *message.Message, s *keySlot, now int64) bool {
	l := c.latest
	if _, sup := l.hold(m, s, c.shape); sup {
		c.hub.stats.superseded.Add(1)
	}
	if l.cost+c.queued > c.hub.cfg.MaxQueueBytes {
		c.closeLocked(wsframe.ClosePolicyViolation, wsframe.ReasonTooSlow, ReasonQueueFull, false)
		return false
	}
	c.scheduleLocked(now)
	return true
}

// conflateLocked switches the client to conflated mode, as pushLocked's
// bound asks, then holds m: the queue the writer has not taken is folded
// into the pending set (notices stay queued), and the conflated notice
// is queued ahead of it. It reports false when even the folded set is
// over the bound (the client is then closed as before). c.mu must be
// held.
func (c *Client) conflateLocked(m *message.Message) bool {
	if c.latest == nil {
		c.latest = newLatest(0)
	}
	l := c.latest
	l.conflating = true
	c.hub.stats.conflating.Add(1)
	c.hub.stats.conflations.Add(1)
	// A copy: a shared backlog's array is read by other clients.
	old := make([]*message.Message, 0, len(c.backlog)+len(c.queue)+1)
	old = append(append(old, c.backlog...), c.queue...)
	if c.shared {
		c.backlog = nil // other clients read that array: never cleared
	} else {
		clear(c.backlog)
		c.backlog = nil
	}
	c.shared = false
	clear(c.queue)
	c.queue = c.queue[:0]
	c.queued = 0
	c.pubCost = 0
	if n := c.hub.cfg.ConflatedNotice; n != nil && n.Frames[c.shape] != nil {
		c.queue = append(c.queue, n)
		c.queued += c.Cost(n)
	}
	for _, o := range append(old, m) {
		if o.Notice() {
			c.queue = append(c.queue, o)
			c.queued += c.Cost(o)
			continue
		}
		if _, sup := l.hold(o, nil, c.shape); sup {
			c.hub.stats.superseded.Add(1)
		}
	}
	if l.cost+c.queued > c.hub.cfg.MaxQueueBytes {
		c.closeLocked(wsframe.ClosePolicyViolation, wsframe.ReasonTooSlow, ReasonQueueFull, false)
		return false
	}
	return true
}

// releaseLocked moves the pending messages that are due, in publish
// order, into the (empty) queue for the writer to take: at most maxBatch,
// and while conflating about conflateBatchBytes of frames. It stops at the
// first message whose key's window has not passed and arms the timer for
// it. A conflating client whose pending set and queue are empty leaves
// conflated mode here, and caughtUp reports that its notice is due.
// c.mu must be held.
func (c *Client) releaseLocked() (caughtUp bool) {
	l := c.latest
	if l == nil || c.closing {
		return false
	}
	now := c.hub.clock()
	bytes := 0
	for n := 0; n < maxBatch && l.live > 0; n++ {
		p, ok := l.headDue(now)
		if !ok || l.conflating && bytes >= conflateBatchBytes {
			break
		}
		m := p.m
		cost := c.Cost(m)
		l.take(p, now, cost)
		if c.queue == nil {
			c.queue = c.hub.shardOf(c).getArray()
		}
		c.queue = append(c.queue, m)
		c.queued += cost
		bytes += cost
	}
	c.scheduleLocked(now)
	if l.conflating && l.live == 0 && len(c.queue) == 0 && len(c.backlog) == 0 {
		l.conflating = false
		c.hub.stats.conflating.Add(-1)
		if l.interval == 0 {
			c.latest = nil // an ordinary client again
		}
		return true
	}
	return false
}

// readyLocked reports whether the writer has something to take from the
// latest-wins state now: a pending message that is due, or the end of
// conflation to announce. c.mu must be held.
func (c *Client) readyLocked() bool {
	l := c.latest
	if l == nil || c.closing {
		return false
	}
	if l.live == 0 {
		return l.conflating
	}
	_, ok := l.headDue(c.hub.clock())
	return ok
}

// scheduleLocked arms the timer that wakes the writer when the pending
// head's window passes, unless it is armed for then or earlier already.
// c.mu must be held.
func (c *Client) scheduleLocked(now int64) {
	l := c.latest
	if l.interval == 0 || l.live == 0 || c.closing {
		return
	}
	at := l.nextDue()
	if at <= now || l.timerAt != 0 && l.timerAt <= at {
		return
	}
	l.timerAt = at
	d := time.Duration(at - now)
	if l.timer == nil {
		l.timer = time.AfterFunc(d, c.rateTimer)
		return
	}
	l.timer.Reset(d)
}

// rateTimer runs when a pending head's window has passed: it wakes the
// writer, which takes what is due.
func (c *Client) rateTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.latest == nil {
		return
	}
	c.latest.timerAt = 0
	c.scheduleLocked(c.hub.clock()) // fired early: armed again
	c.wakeLocked()
}

// dropLatestLocked discards the pending messages of a closing client.
// c.mu must be held.
func (c *Client) dropLatestLocked() {
	l := c.latest
	if l == nil {
		return
	}
	c.hub.stats.dropFrames.Add(uint64(l.drop()))
	if l.conflating {
		l.conflating = false
		c.hub.stats.conflating.Add(-1)
	}
}

// costOf is Client.Cost for a client of shape s.
func costOf(m *message.Message, s message.Shape) int {
	f := m.Frames[s]
	if f == nil {
		return 0
	}
	return len(f) + entryCost
}

// queueCaughtUpLocked queues the caught_up notice for a client of a shape
// that gets notices. c.mu must be held.
func (c *Client) queueCaughtUpLocked() {
	n := c.hub.cfg.CaughtUpNotice
	if n == nil || n.Frames[c.shape] == nil {
		return
	}
	c.queue = append(c.queue, n)
	c.queued += c.Cost(n)
}
