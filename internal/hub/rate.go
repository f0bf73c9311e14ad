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
// Two bounds take precedence over the rate: a pending set over half of
// MaxQueueBytes is handed on at once, and the keys handed on are
// remembered in two generations dropped whole (latest.sent), at most
// about MaxQueueBytes of them. A client of a group that falls behind is
// closed, or with Config.Conflate conflated, as any other client.

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

// rates is the hub's registry of rate groups.
type rates struct {
	mu     sync.Mutex
	groups map[rateKey]*rateGroup // guarded by mu
	gen    uint64                 // counts changes of groups; guarded by mu
}

// acquireRate returns the group of sub (compiled, with its view) at rate, one
// more member counted; the member is added with add.
func (h *Hub) acquireRate(sub *compiled, rate float64) *rateGroup {
	k := rateKey{view: sub.view(), interval: rateInterval(rate), sub: sub.ident()}
	rs := &h.rates
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.groups == nil {
		rs.groups = make(map[rateKey]*rateGroup)
	}
	g := rs.groups[k]
	if g == nil {
		g = &rateGroup{hub: h, key: k, sub: sub, l: newLatest(rate)}
		g.ext = extras{view: k.view, rate: g}
		rs.groups[k] = g
		rs.gen++
	}
	g.refs++
	return g
}

// releaseRate counts a member of g gone (removed with remove), forgetting
// g with its last: its pending messages are dropped and its timer
// stopped.
func (h *Hub) releaseRate(g *rateGroup) {
	rs := &h.rates
	rs.mu.Lock()
	g.refs--
	last := g.refs == 0
	if last {
		delete(rs.groups, g.key)
		rs.gen++
	}
	rs.mu.Unlock()
	if !last {
		return
	}
	g.mu.Lock()
	g.closed = true
	g.l.drop()
	if g.timer != nil {
		g.timer.Stop()
		g.timerAt = 0
	}
	g.mu.Unlock()
}

// ratePublish is the publishing goroutine's copy of the rate groups,
// taken again only when they changed.
type ratePublish struct {
	gen    uint64
	groups []*rateGroup
}

// rateGroups returns the rate groups for the publishing goroutine.
func (h *Hub) rateGroups() []*rateGroup {
	rp := &h.ratePub
	rs := &h.rates
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rp.gen != rs.gen || rp.groups == nil {
		clear(rp.groups)
		rp.groups = rp.groups[:0]
		for _, g := range rs.groups {
			rp.groups = append(rp.groups, g)
		}
		rp.gen = rs.gen
	}
	return rp.groups
}

// add makes c a member of g.
func (g *rateGroup) add(c *Client) {
	g.mu.Lock()
	c.pos = len(g.members)
	g.members = append(g.members, c)
	g.mu.Unlock()
}

// remove takes c out of g's members.
func (g *rateGroup) remove(c *Client) {
	g.mu.Lock()
	removeAt(&g.members, c)
	g.mu.Unlock()
}

// offer gives the group the messages of a Publish seq (msgs, or for a
// group with a view what the view made of them: out, per message, as
// viewSlot.out holds it) in order, and hands on what is due at once.
func (g *rateGroup) offer(msgs, out []*message.Message, seq uint64) {
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
	for i, m := range msgs {
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
// bound (pushLocked).
func (c *Client) enqueueRated(rel []pending, seq uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.parked {
		return 0
	}
	var n uint64
	for _, p := range rel {
		if p.seq <= c.from || !c.takes(p.m, nil) {
			continue
		}
		if !c.offerLocked(p.m, seq) {
			break
		}
		n++
	}
	c.wakeLocked()
	return n
}

// publishRated offers msgs, a Publish seq, to the rate groups without a
// view (publishViewed offers to the others, with what their view made of
// each message).
func (h *Hub) publishRated(groups []*rateGroup, msgs []*message.Message, seq uint64) {
	for _, g := range groups {
		if g.key.view == nil {
			g.offer(msgs, nil, seq)
		}
	}
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
