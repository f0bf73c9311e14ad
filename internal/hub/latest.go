package hub

import (
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// This file is the latest-wins pending set, and the part of it a client
// uses for conflation (Config.Conflate), which keeps a client that fell
// behind instead of closing it. The rate bound of Subscription.MaxRate
// uses the same pending set, shared by the clients of one rate group
// (rate.go). Both hold at most one pending message per key: a newer
// message of a key supersedes (drops) the pending one. Frames stay
// shared: pending entries are the same *message.Message pointers every
// other client queues; only which are sent, and when, is chosen.
//
// Pending messages are kept in publish order (a map from key to slot plus
// an ordered slice, compacted) and are handed on strictly in that order:
// a message that supersedes another moves to the end. Nothing is handed
// on while an older pending message waits for its key's window (rate
// only). So a message's cursor (its own position) still means
// "everything up to here was delivered or superseded", and a client
// resumed from any cursor it received loses nothing but superseded
// messages. Messages without a key are one key of their own. A record of
// many Quix rows shares its key: its rows supersede each other. Notices
// keep their place: one published while records are pending waits behind
// them in a slot of its own, never superseded and always due, so that a
// reset never overtakes a record of the old topic.
//
// Conflation: where a client over MaxQueueBytes would be closed, it
// switches to conflated mode instead: its queue not yet taken by the
// writer is folded into a pending set of its own, newer messages
// supersede per key, and the writer drains the pending set in publish
// order, a piece a turn (latest.piece: from conflateBatchBytes, growing
// while the link takes each at once), so that what waits for the socket
// stays small and what waits in the set keeps being superseded.
// Envelope and SSE clients get {"notice":"conflated"} when it starts and
// {"notice":"caught_up"} once the pending set and the queue are empty.
// The pending set's cost (costOf: an entry's key, all its frames and
// entryCost, what it keeps alive) plus the queue's is bounded by
// MaxQueueBytes: a client whose pending set would exceed it (a client of
// more distinct keys than fit) is closed with 1008 "too slow" as before.
// A client of a rate group conflates the same way: what its group hands
// it is then held, per key, in its own pending set.

// conflateBatchBytes is the first piece (latest.piece) a client with a
// pending set of its own hands its writer in a turn, and the piece after
// a write its link did not take at once: small, so that messages wait in
// the pending set, where they are superseded, rather than in the socket.
// What a slow conflated reader receives is about this, what its socket
// holds (slowNotSentBytes not yet sent, and what is in flight) and its
// own receive buffer behind the latest value: at 10 KB/s, each KiB is
// about 0.1 s of staleness.
const conflateBatchBytes = 1 << 10

// connNotSentBytes is about the most bytes a client's raw socket holds
// not yet sent with Config.Conflate (TCP_NOTSENT_LOWAT, set when it is
// attached), whatever SOCKET_SEND_BUFFER is: a slow reader's socket is
// full once it holds this beyond what is in flight, so that it reads
// what it holds within WriteTimeout at 64 KiB per WriteTimeout, with the
// rest of the write in progress, and is conflated rather than dropped.
// Large, so that a burst on a new connection (whose receive window starts
// small) does not make a client that reads at once look slow.
const connNotSentBytes = 64 << 10

// slowNotSentBytes is about the most bytes a conflated client's raw
// socket holds not yet sent (TCP_NOTSENT_LOWAT, set by its writer while
// it is conflated, takeLatestLocked): what the socket does not take
// waits in the server, where conflation can replace it.
const slowNotSentBytes = 1 << 10

// slowBatchBytes is about the most frame bytes one write carries with
// Config.Conflate for a client that reads slowly (its piece while it
// holds a pending set of its own): a write must finish within WriteTimeout, so
// such a client is given small writes, and what waits stays in the queue,
// where conflation can reduce it, not in the socket. A client reads slowly
// once its socket was full (Client.slowWrites); a connection that is not
// a raw socket, whose fullness cannot be seen, is taken to.
const slowBatchBytes = 64 << 10

// noBatchBytes is batchBytes' answer when writes are not bounded in bytes.
const noBatchBytes = int(^uint(0) >> 1)

// batchBytes returns about the most frame bytes the client's next write
// may carry: its piece while it holds a pending set of its own (see
// latest.piece), otherwise, with Config.Conflate, slowBatchBytes for a
// client whose raw socket was once full; no bound for the others. c.mu
// must be held.
func (c *Client) batchBytes() int {
	switch {
	case c.latest != nil:
		return c.latest.pieceBytes()
	case !c.hub.cfg.Conflate:
		return noBatchBytes
	case c.raw != nil && !c.slowWrites:
		return noBatchBytes
	}
	return slowBatchBytes
}

// batchLen returns how many of msgs (at least one) the next write takes:
// at most maxBatch, and about limit bytes of frames.
func (c *Client) batchLen(msgs []*message.Message, limit int) int {
	n := min(maxBatch, len(msgs))
	if limit == noBatchBytes {
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

// keySlot is a pending message's place in latest.order; a pending
// notice has one of its own, in no map.
type keySlot struct {
	slot int // index in latest.order of the key's pending message; -1 none
}

// pending is a message waiting in a latest-wins set, with its key's slot
// (so that the head is taken without a map lookup), the number of the
// Publish it came in (a rate group's clients take only what was
// published after they joined) and what it is charged (costOf).
type pending struct {
	m    *message.Message
	s    *keySlot
	seq  uint64
	cost int
}

// latest is a latest-wins pending set: a conflating client's (guarded by
// the client's mu) or a rate group's (guarded by the group's mu).
type latest struct {
	interval int64 // ns between two messages of one key; 0: no rate bound (a client's)
	// quiet marks a client's set that holds what its rate group hands it
	// while its writer is busy (Client.enqueueRated), not a conflation:
	// no notices, not counted as conflating.
	quiet bool
	// piece is about the most frame bytes the client's writer takes a
	// turn while it holds this set (0: conflateBatchBytes): small, so
	// that what waits is where newer messages replace it and a slow link
	// finishes each write within WriteTimeout, and doubled after each
	// write the connection took at once, up to slowBatchBytes, so that a
	// fast link catches up; back to conflateBatchBytes after one it did
	// not (resize).
	piece int
	// limited: the client's raw socket was given slowNotSentBytes while
	// conflating (Client.takeLatestLocked).
	limited bool

	keys   map[string]*keySlot // the keys with a pending message, and recently taken ones (trimKeys); pointers, updated in place
	nilKey keySlot             // the key of messages without one
	// order holds the pending messages in publish order from head on;
	// entries with a nil m were superseded or taken.
	order []pending
	head  int
	live  int // non-nil entries of order
	cost  int // costOf the live entries

	// When each key was last handed on (rate only), in two generations:
	// sentNew since sentAt, sentOld the one before. A generation is
	// dropped whole (O(1)) once it is older than interval, or early once
	// the keys of sentNew cost more than half of MaxQueueBytes, so that
	// this state stays bounded whatever the number of keys.
	sentNew, sentOld map[string]*sentKey
	nilSent          int64 // for messages without a key; 0 never
	sentAt           int64
	sentCost         int // sentEntryCost plus key bytes of sentNew's entries
}

// sentKey is an entry of a sent map: when its key was last handed on. It
// holds its key, so that a key moves from the older generation to the
// newer, and is updated there, without allocating.
type sentKey struct {
	key string
	at  int64 // hub clock
}

// sentEntryCost is about what one entry of a sent map costs beside its
// key's bytes.
const sentEntryCost = 64

// newLatest returns a pending set with the rate bound rate (0: none).
func newLatest(rate float64) *latest {
	l := &latest{keys: make(map[string]*keySlot), nilKey: keySlot{slot: -1}}
	if rate > 0 {
		l.interval = rateInterval(rate)
		l.sentNew = make(map[string]*sentKey)
	}
	return l
}

// rateInterval is the ns between two messages of one key at rate a second.
func rateInterval(rate float64) int64 { return int64(float64(time.Second) / rate) }

// find returns m's key's pending slot, nil when the key has none.
func (l *latest) find(m *message.Message) *keySlot {
	if m.Key == nil {
		return &l.nilKey
	}
	return l.keys[string(m.Key)]
}

// slotFor returns the slot of m's pending entry to be: a fresh one for a
// notice (never superseded), otherwise its key's, made when it has none.
func (l *latest) slotFor(m *message.Message) *keySlot {
	if m.Notice() {
		return &keySlot{slot: -1}
	}
	if s := l.find(m); s != nil {
		return s
	}
	s := &keySlot{slot: -1}
	l.keys[string(m.Key)] = s
	return s
}

// lastSent returns the hub clock at which m's key was last handed on
// within the remembered generations; 0 when not.
func (l *latest) lastSent(m *message.Message) int64 {
	if m.Key == nil {
		return l.nilSent
	}
	if e := l.sentNew[string(m.Key)]; e != nil {
		return e.at
	}
	if e := l.sentOld[string(m.Key)]; e != nil {
		return e.at
	}
	return 0
}

// due reports whether m may be handed on at now: always a notice, and
// a record once its key's window has passed.
func (l *latest) due(m *message.Message, now int64) bool {
	if l.interval == 0 || m.Notice() {
		return true
	}
	last := l.lastSent(m)
	return last == 0 || now-last >= l.interval
}

// sent records that m was handed on at now (rate only); bound is
// MaxQueueBytes, which the sent maps' keys stay within.
func (l *latest) sent(m *message.Message, now int64, bound int) {
	if l.interval == 0 || m.Notice() {
		return
	}
	if m.Key == nil {
		l.nilSent = now
		return
	}
	if now-l.sentAt >= l.interval || l.sentCost > bound/2 {
		// sentOld's entries are all older than interval (or, when
		// early, the oldest of too many keys): forgotten whole.
		l.sentOld, l.sentNew = l.sentNew, make(map[string]*sentKey, len(l.sentNew))
		l.sentAt, l.sentCost = now, 0
	}
	if e := l.sentNew[string(m.Key)]; e != nil {
		e.at = now
		return
	}
	e := l.sentOld[string(m.Key)]
	if e == nil {
		e = &sentKey{key: string(m.Key)}
	}
	e.at = now
	l.sentNew[e.key] = e
	l.sentCost += len(e.key) + sentEntryCost
}

// hold makes m, of the Publish seq, its key's pending message,
// superseding the one pending (a notice keeps a place of its own); it
// returns whether it superseded one, and whether the head of the pending
// set may have changed (m superseded the head, or is alone), so that a
// caller whose timer is armed for the head reschedules only then.
func (l *latest) hold(m *message.Message, seq uint64) (superseded, head bool) {
	s := l.slotFor(m)
	if s.slot >= 0 {
		head = s.slot == l.firstLive()
		old := l.order[s.slot]
		l.order[s.slot] = pending{}
		l.live--
		l.cost -= old.cost
		superseded = true
	}
	cost := costOf(m)
	s.slot = len(l.order)
	l.order = append(l.order, pending{m, s, seq, cost})
	l.live++
	l.cost += cost
	l.compact()
	return superseded, head || l.live == 1
}

// firstLive returns the index in order of the head, the first pending
// entry (len(order) when none), moving head past taken entries.
func (l *latest) firstLive() int {
	for l.head < len(l.order) && l.order[l.head].m == nil {
		l.head++
	}
	return l.head
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
// on at now; a nil m when nothing is pending.
func (l *latest) headDue(now int64) (pending, bool) {
	if l.firstLive() == len(l.order) {
		l.order, l.head = l.order[:0], 0
		return pending{}, false
	}
	p := l.order[l.head]
	return p, l.due(p.m, now)
}

// nextDue returns the hub clock at which the head becomes due; 0 when
// nothing is pending.
func (l *latest) nextDue() int64 {
	if l.live == 0 {
		return 0
	}
	p, ok := l.headDue(0)
	if ok {
		return 1
	}
	return l.lastSent(p.m) + l.interval
}

// take removes the head p (which headDue returned), frees its key's slot
// and records it as sent.
func (l *latest) take(p pending, now int64, bound int) {
	l.order[l.head] = pending{}
	l.head++
	l.live--
	l.cost -= p.cost
	p.s.slot = -1
	l.trimKeys()
	l.sent(p.m, now, bound)
}

// trimKeys rebuilds keys with only the pending keys' slots once it holds
// more than twice as many as there are pending messages (and 64): a key
// taken keeps its slot meanwhile, so that a key that comes back, as
// busy keys do, is found and reused in place, with no allocation and
// none of the deleted entries a map probes past. Amortized, a constant
// per message taken; keys stays bounded by the pending set.
func (l *latest) trimKeys() {
	if len(l.keys) <= 2*l.live+64 {
		return
	}
	keys := make(map[string]*keySlot, 2*l.live)
	for k, s := range l.keys {
		if s.slot >= 0 {
			keys[k] = s
		}
	}
	l.keys = keys
}

// takeAll removes every pending message and returns them in publish
// order, without recording them as sent.
func (l *latest) takeAll() []*message.Message {
	out := make([]*message.Message, 0, l.live)
	for _, p := range l.order[l.head:] {
		if p.m != nil {
			out = append(out, p.m)
		}
	}
	clear(l.order)
	l.order, l.head, l.live, l.cost = l.order[:0], 0, 0, 0
	clear(l.keys)
	l.nilKey = keySlot{slot: -1}
	return out
}

// drop discards every pending message and returns how many there were.
func (l *latest) drop() int {
	n := l.live
	clear(l.order)
	l.order, l.head, l.live, l.cost = nil, 0, 0, 0
	clear(l.keys)
	l.nilKey = keySlot{slot: -1}
	return n
}

// holdLocked makes m, for a client with a pending set of its own
// (conflating, or holding what its rate group hands it while its writer
// is busy), its key's pending message (a notice keeps its place among
// them). When the pending set and the queue cost more than
// MaxQueueBytes, a client that holds quietly is conflated (with
// Config.Conflate) or closed with 1008 "too slow", and a conflating one
// closed. c.mu must be held.
func (c *Client) holdLocked(m *message.Message) bool {
	l := c.latest
	if superseded, _ := l.hold(m, 0); superseded {
		c.hub.stats.superseded.Add(1)
	}
	if l.cost+c.queued <= c.hub.cfg.MaxQueueBytes {
		return true
	}
	if l.quiet && c.hub.cfg.Conflate {
		return c.conflateLocked(nil)
	}
	c.closeLocked(wsframe.ClosePolicyViolation, wsframe.ReasonTooSlow, ReasonQueueFull, false)
	return false
}

// holdQuietLocked starts holding what the client's rate group hands it
// in a pending set of its own, superseded per key, as long as its writer
// is busy with what it was handed before: a member whose link is slower
// than its rate keeps one message per key waiting, not every hand-over.
// c.mu must be held.
func (c *Client) holdQuietLocked() {
	c.latest = newLatest(0)
	c.latest.quiet = true
}

// conflateLocked switches the client to conflated mode, as pushLocked's
// bound asks, then holds m (nil: none): the queue the writer has not
// taken, in publish order, is folded into the pending set, notices
// keeping their places, and the conflated notice is queued ahead of it.
// It reports false when even the folded set is over the bound (the
// client is then closed as before). c.mu must be held.
func (c *Client) conflateLocked(m *message.Message) bool {
	var held []*message.Message // a quiet set's: newer than the queue
	if c.latest != nil {
		held = c.latest.takeAll()
	}
	l := newLatest(0)
	c.latest = l
	c.hub.stats.conflating.Add(1)
	c.hub.stats.conflations.Add(1)
	// A copy: a shared backlog's array is read by other clients.
	old := make([]*message.Message, 0, len(c.backlog)+len(c.queue)+len(held)+1)
	old = append(append(append(old, c.backlog...), c.queue...), held...)
	if m != nil {
		old = append(old, m)
	}
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
	for _, o := range old {
		if superseded, _ := l.hold(o, 0); superseded {
			c.hub.stats.superseded.Add(1)
		}
	}
	if l.cost+c.queued > c.hub.cfg.MaxQueueBytes {
		c.closeLocked(wsframe.ClosePolicyViolation, wsframe.ReasonTooSlow, ReasonQueueFull, false)
		return false
	}
	return true
}

// releaseLocked moves pending messages of a client's own set, in publish
// order, into the (empty) queue for the writer to take: at most maxBatch,
// and about its piece (latest.piece) of frames. A client whose
// pending set and queue are empty is an ordinary client again, and
// caughtUp reports that the end of its conflation is to be announced.
// c.mu must be held.
func (c *Client) releaseLocked() (caughtUp bool) {
	l := c.latest
	if l == nil || c.closing {
		return false
	}
	limit := l.pieceBytes()
	bytes := 0
	for n := 0; n < maxBatch && l.live > 0 && bytes < limit; n++ {
		p, _ := l.headDue(0)
		cost := c.Cost(p.m)
		l.take(p, 0, 0)
		if c.queue == nil {
			c.queue = c.hub.shardOf(c).getArray()
		}
		c.queue = append(c.queue, p.m)
		c.queued += cost
		bytes += cost
	}
	if l.live == 0 && len(c.queue) == 0 && len(c.backlog) == 0 {
		c.latest = nil // an ordinary client again
		if l.quiet {
			return false
		}
		c.hub.stats.conflating.Add(-1)
		return true
	}
	return false
}

// quickWrite is how long a write to a connection that is not a raw
// socket (whose fullness cannot be seen) may take and still count as
// taken at once, for latest.resize.
const quickWrite = 5 * time.Millisecond

// resize doubles the piece after a write the connection took at once
// (quick), up to slowBatchBytes, and sets it back to conflateBatchBytes
// after one it did not.
func (l *latest) resize(quick bool) {
	if !quick {
		l.piece = conflateBatchBytes
		return
	}
	l.piece = min(2*l.pieceBytes(), slowBatchBytes)
}

// pieceBytes returns l.piece, or conflateBatchBytes when not set.
func (l *latest) pieceBytes() int {
	if l.piece == 0 {
		return conflateBatchBytes
	}
	return l.piece
}

// takeLatestLocked is the writer's turn on the client's pending set, when
// it holds one and its queue is empty: it moves a piece into the queue
// (releaseLocked), queues the caught_up notice when conflation ends, and
// sets b.notSent for a raw socket: slowNotSentBytes while conflating, so
// that what a slow reader has not read waits here rather than in the
// socket, and connNotSentBytes again once it caught up. c.mu must be
// held.
func (c *Client) takeLatestLocked(b *batch) {
	l := c.latest
	if l == nil || len(c.backlog) > 0 || len(c.queue) > 0 {
		return
	}
	if c.raw != nil && !l.quiet && !l.limited {
		l.limited = true
		b.notSent = slowNotSentBytes
	}
	if c.releaseLocked() {
		c.queueCaughtUpLocked()
		if l.limited && c.raw != nil {
			b.notSent = connNotSentBytes
		}
	}
}

// readyLocked reports whether the writer has something to take from the
// pending set of a conflating client: a pending message, or the end of
// conflation to announce. c.mu must be held.
func (c *Client) readyLocked() bool {
	return c.latest != nil && !c.closing
}

// dropLatestLocked discards the pending messages of a closing client.
// c.mu must be held.
func (c *Client) dropLatestLocked() {
	l := c.latest
	if l == nil {
		return
	}
	c.hub.stats.dropFrames.Add(uint64(l.drop()))
	c.latest = nil
	if !l.quiet {
		c.hub.stats.conflating.Add(-1)
	}
}

// costOf is what a pending message is charged: its frame bytes of every
// shape (it keeps them alive while pending, whichever a client reads),
// its key (copied into the keys map) and entryCost.
func costOf(m *message.Message) int {
	n := entryCost + len(m.Key)
	for _, f := range m.Frames {
		n += len(f)
	}
	return n
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
