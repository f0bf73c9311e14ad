package hub

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsdest/wsdest/internal/message"
)

// This file is the rate bound of Subscription.MaxRate (max_rate=N): each
// key is handed to a client at most N times a second, latest wins.
//
// The bound is kept once per rate group, not once per client: the clients
// with the same subscription (keys and grant), view and rate share one
// group, which holds the latest-wins pending set (latest.go) and the
// time each key was last handed on. Publish offers each message once to
// each group whose subscription takes it: a message is handed on at once
// when nothing is pending and its key was last handed on at least 1/N
// ago; otherwise it becomes its key's pending message. A runtime timer
// (time.AfterFunc: no goroutine until it fires) hands on the pending
// messages from the head, in publish order, while their key's window has
// passed, and stops at the first that has not. What is handed on goes to
// every client of the group as an ordinary Publish would (Client.pushLocked
// and its bound), so a client of a group costs, per message it does not
// get, nothing: 1,000 clients of max_rate=1 on a topic of 100 keys at
// 1,000 records a second cost the hub 1,000 offers and 100 hand-overs a
// second, each hand-over queued for the 1,000 clients.
//
// Publish order holds within a group (the pending set's invariant), so
// each client's cursor keeps its meaning: everything up to it was
// delivered or superseded. A client takes only what its group hands on of
// the Publishes after it joined: those after its Wants snapshot
// (Client.from), and for a client that started from a position, those
// after Join (its catch-up brought the rest). Its first message of a key
// may so come sooner than 1/N after it connected or caught up: the window
// is the group's.
//
// The groups are indexed as a shard indexes its clients (rates): a group
// of exact keys is offered only its keys' messages (and every notice),
// found by the key; the groups of every key, of patterns or of a grant
// test each message; the groups with a view are offered what their view
// made of each message (publishViewed).
//
// Two bounds take precedence over the rate: a pending set over half of
// MaxQueueBytes is handed on at once, and the keys handed on are
// remembered in two generations dropped whole (latest.sent), at most
// about MaxQueueBytes of them. A member whose writer has not taken what
// it was handed before holds what comes next in a pending set of its own,
// one message per key (Client.enqueueRated), so that a link slower than
// the rate costs one message per key, not a queue; past MaxQueueBytes it
// is closed, or with Config.Conflate conflated, as any other client.

// rateKey identifies a rate group: its clients' view, rate and
// subscription (compiled.ident).
type rateKey struct {
	view     *viewSlot
	interval int64
	sub      string
}

// rateGroup is the rate bound shared by the clients of one rateKey.
type rateGroup struct {
	hub  *Hub
	key  rateKey
	sub  *compiled // the subscription every member has (its first member's)
	ext  extras    // {view, rate: the group}: what its members point to
	refs int       // members, counting those being added; guarded by the hub's rates.mu
	pos  int       // index in its list of rates (keyed, scan or viewed); guarded by rates.mu

	// Owned by the publishing goroutine: the indexes of the messages of
	// the current Publish picked for a group of exact keys.
	pickSeq uint64
	picks   []int

	// mu guards what follows. It is held while what the group hands on
	// is queued for its members, under each member's own mu (lock order:
	// mu, then a client's mu), so that members get hand-overs in order.
	mu      sync.Mutex
	members []*Client // each member's pos is its index here
	l       *latest
	timer   *time.Timer // wakes tick when the head's window passes; nil until needed
	timerAt int64       // hub clock at which timer fires; 0 when not armed
	closed  bool        // the last member left: offers are ignored, the timer stopped
	out     []pending   // scratch of handOn
}

// rates is the hub's registry of rate groups, indexed for Publish as a
// shard indexes its clients: a message is offered to the groups of its
// key, to the groups that must test it, and (publishViewed) to the
// groups with a view, never to a group of other exact keys.
type rates struct {
	mu     sync.RWMutex
	groups map[rateKey]*rateGroup  // every group
	exact  map[string][]*rateGroup // groups without a view, of exact keys only, by key
	keyed  []*rateGroup            // those groups (notices go to every group)
	scan   []*rateGroup            // the other groups without a view: every key, patterns, or a grant
	viewed []*rateGroup            // groups with a view
}

// list returns the list of rs that g is in. rs.mu must be held.
func (rs *rates) list(g *rateGroup) *[]*rateGroup {
	switch {
	case g.key.view != nil:
		return &rs.viewed
	case g.sub.keyRoute() == routeExact:
		return &rs.keyed
	}
	return &rs.scan
}

// acquireRate returns the group of sub (compiled, with its view) at rate,
// one more member counted; the member is added with add.
func (h *Hub) acquireRate(sub *compiled, rate float64) *rateGroup {
	k := rateKey{view: sub.view(), interval: rateInterval(rate), sub: sub.ident()}
	rs := &h.rates
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.groups == nil {
		rs.groups = make(map[rateKey]*rateGroup)
		rs.exact = make(map[string][]*rateGroup)
	}
	g := rs.groups[k]
	if g == nil {
		g = &rateGroup{hub: h, key: k, sub: sub, l: newLatest(rate)}
		g.ext = extras{view: k.view, rate: g}
		rs.groups[k] = g
		l := rs.list(g)
		g.pos = len(*l)
		*l = append(*l, g)
		if l == &rs.keyed {
			for _, key := range sub.exact {
				rs.exact[key] = append(rs.exact[key], g)
			}
		}
	}
	g.refs++
	return g
}

// releaseRate counts a member of g gone (removed with remove), forgetting
// g with its last: its pending messages and the keys it sent are dropped
// and its timer stopped.
func (h *Hub) releaseRate(g *rateGroup) {
	rs := &h.rates
	rs.mu.Lock()
	g.refs--
	last := g.refs == 0
	if last {
		rs.forget(g)
	}
	rs.mu.Unlock()
	if !last {
		return
	}
	g.mu.Lock()
	g.closed = true
	g.l.drop()
	g.l.keys, g.l.sentNew, g.l.sentOld = nil, nil, nil
	if g.timer != nil {
		g.timer.Stop()
		g.timerAt = 0
	}
	g.mu.Unlock()
}

// forget takes g out of rs. rs.mu must be held.
func (rs *rates) forget(g *rateGroup) {
	delete(rs.groups, g.key)
	l := rs.list(g)
	last := len(*l) - 1
	(*l)[g.pos] = (*l)[last]
	(*l)[g.pos].pos = g.pos
	(*l)[last] = nil
	*l = (*l)[:last]
	if l != &rs.keyed {
		return
	}
	for _, key := range g.sub.exact {
		unindex(rs.exact, key, g)
	}
}

// ratePublish is the publishing goroutine's scratch for the rate groups:
// what the current Publish offers to, emptied after it.
type ratePublish struct {
	scan    []*rateGroup // rates.scan
	touched []*rateGroup // groups of exact keys with messages picked
	viewed  []*rateGroup // rates.viewed, for publishViewed
}

// publishRated offers msgs, a Publish seq, to the rate groups without a
// view: the groups of exact keys only their keys' messages (and every
// notice), the others every message. It returns the groups with a view,
// which publishViewed offers what their view made of each message; the
// caller hands the slice back with doneRated.
func (h *Hub) publishRated(msgs []*message.Message, seq uint64) []*rateGroup {
	rs, rp := &h.rates, &h.ratePub
	rs.mu.RLock()
	rp.scan = append(rp.scan, rs.scan...)
	rp.viewed = append(rp.viewed, rs.viewed...)
	if len(rs.keyed) > 0 {
		for i, m := range msgs {
			switch {
			case m.Notice():
				for _, g := range rs.keyed {
					rp.pick(g, i, seq)
				}
			case m.Key != nil:
				for _, g := range rs.exact[string(m.Key)] {
					rp.pick(g, i, seq)
				}
			}
		}
	}
	rs.mu.RUnlock()
	for _, g := range rp.scan {
		g.offer(msgs, nil, nil, seq)
	}
	for _, g := range rp.touched {
		g.offer(msgs, g.picks, nil, seq)
		if cap(g.picks) > maxBatch {
			g.picks = nil
		}
		g.picks = g.picks[:0]
	}
	clear(rp.scan)
	clear(rp.touched)
	rp.scan, rp.touched = rp.scan[:0], rp.touched[:0]
	return rp.viewed
}

// doneRated empties the list of groups with a view publishRated returned.
func (h *Hub) doneRated() {
	rp := &h.ratePub
	clear(rp.viewed)
	rp.viewed = rp.viewed[:0]
}

// pick adds the message of index i of the Publish seq to g's picks.
func (rp *ratePublish) pick(g *rateGroup, i int, seq uint64) {
	if g.pickSeq != seq {
		g.pickSeq = seq
		rp.touched = append(rp.touched, g)
	}
	g.picks = append(g.picks, i)
}

// add makes c a member of g. A Publish that offered g messages before c
// was a member is not c's: c takes only the Publishes after the last one
// begun, so that it gets each Publish whole or not at all.
func (g *rateGroup) add(c *Client) {
	g.mu.Lock()
	c.from = max(c.from, g.hub.lastPub.Load())
	c.pos = len(g.members)
	g.members = append(g.members, c)
	g.mu.Unlock()
}

// remove takes c out of g's members.
func (g *rateGroup) remove(c *Client) {
	g.mu.Lock()
	if c.pos < len(g.members) && g.members[c.pos] == c {
		removeAt(&g.members, c)
	}
	g.mu.Unlock()
}

// offer gives the group the messages of a Publish seq (msgs, or for a
// group with a view what the view made of them: out, per message, as
// viewSlot.out holds it), in order: those of index picks, or every one
// when picks is nil; and hands on what is due at once.
func (g *rateGroup) offer(msgs []*message.Message, picks []int, out []*message.Message, seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	l := g.l
	now := g.hub.clock()
	bound := g.hub.cfg.MaxQueueBytes
	rel := g.out[:0]
	reschedule := false
	n := len(msgs)
	if picks != nil {
		n = len(picks)
	}
	for j := range n {
		i := j
		if picks != nil {
			i = picks[j]
		}
		m := msgs[i]
		if !m.Notice() {
			if !g.sub.matches(m.Key) {
				continue
			}
			if out != nil {
				if m = out[i]; m == nil || m == dropped || m == wanted {
					continue
				}
			}
		}
		if l.live == 0 && l.due(m, now) {
			l.sent(m, now, bound)
			rel = append(rel, pending{m: m, seq: seq})
			continue
		}
		superseded, head := l.hold(m, seq)
		if superseded {
			g.hub.stats.superseded.Add(1)
		}
		reschedule = reschedule || head
		if l.cost > bound/2 {
			// Many keys wait behind one key's window: the rate gives
			// way to the bound, and the pending set is handed on.
			for l.live > 0 {
				p, _ := l.headDue(now)
				l.take(p, now, bound)
				rel = append(rel, p)
			}
		}
	}
	// A head whose window passed before its timer fired goes now.
	rel = g.takeDue(rel, now)
	g.handOn(rel)
	if reschedule || g.timerAt == 0 {
		g.scheduleLocked(now)
	}
}

// takeDue appends to rel the pending messages that are due at now, from
// the head, in publish order, and returns it. g.mu must be held.
func (g *rateGroup) takeDue(rel []pending, now int64) []pending {
	l := g.l
	for l.live > 0 {
		p, ok := l.headDue(now)
		if !ok {
			break
		}
		l.take(p, now, g.hub.cfg.MaxQueueBytes)
		rel = append(rel, p)
	}
	return rel
}

// tick runs when the head's window has passed: it hands on what is due.
func (g *rateGroup) tick() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.timerAt = 0
	if g.closed {
		return
	}
	now := g.hub.clock()
	g.handOn(g.takeDue(g.out[:0], now))
	g.scheduleLocked(now) // also when it fired early
}

// scheduleLocked arms the timer for when the head's window passes,
// unless it is armed for then or earlier already. g.mu must be held.
func (g *rateGroup) scheduleLocked(now int64) {
	if g.l.live == 0 {
		return
	}
	at := g.l.nextDue()
	if at <= now || g.timerAt != 0 && g.timerAt <= at {
		return
	}
	g.timerAt = at
	d := time.Duration(at - now)
	if g.timer == nil {
		g.timer = time.AfterFunc(d, g.tick)
		return
	}
	g.timer.Reset(d)
}

// handOn queues rel, in order, for every member, each of which counts it
// as one Publish against its queue bound. g.mu must be held.
func (g *rateGroup) handOn(rel []pending) {
	if len(rel) == 0 {
		return
	}
	seq := g.hub.handSeq.Add(1)
	var n uint64
	for _, c := range g.members {
		n += c.enqueueRated(rel, seq)
	}
	g.hub.stats.enqueued.Add(n)
	clear(rel)
	g.out = rel[:0]
}

// enqueueRated queues for a member of a rate group what the group hands
// on (rel), but what was published before the client joined, and
// returns how many it queued; seq numbers the hand-over for the queue
// bound (pushLocked). While the member's writer has not taken what it
// was handed before, the hand-over waits in a pending set of the
// member's own, per key (holdQuietLocked).
func (c *Client) enqueueRated(rel []pending, seq uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.parked {
		return 0
	}
	busy := len(c.queue) > 0 || len(c.backlog) > 0
	var n uint64
	for _, p := range rel {
		if p.seq <= c.from || !c.takes(p.m, nil) {
			continue
		}
		if busy && c.latest == nil {
			c.holdQuietLocked()
		}
		if !c.offerLocked(p.m, seq) {
			break
		}
		n++
	}
	c.wakeLocked()
	return n
}

// ident returns a string that is equal for two subscriptions exactly when
// they take the same keys under the same grant (the order of keys
// aside): a rate group's key.
func (c *compiled) ident() string {
	var b strings.Builder
	c.writeIdent(&b)
	return b.String()
}

func (c *compiled) writeIdent(b *strings.Builder) {
	if c.all {
		b.WriteString("*")
	}
	for _, part := range [][]string{c.exact, c.globs} {
		keys := slices.Sorted(slices.Values(part))
		b.WriteString("|")
		for _, k := range keys {
			b.WriteString(strconv.Itoa(len(k)))
			b.WriteString(":")
			b.WriteString(k)
		}
	}
	if c.grant != nil {
		b.WriteString("|grant(")
		c.grant.writeIdent(b)
		b.WriteString(")")
	}
}
