package hub

import "github.com/wsdest/wsdest"

// This file is the hub's side of clients that start from a position (the
// history package drives it): a client added with ClientOptions.Park gets
// no live messages while the past is pushed to it with Push, paced by
// Backlog; HoldLive then lets live messages queue, unwritten, behind what
// was pushed; ReleaseFunc puts the last stretch of the past ahead of them,
// passes each held live message through a filter (dropping what the past
// already held, replacing what must be re-framed) and lets the writer go.

// Push queues catch-up messages for a client, in order, behind what is
// queued; a message without a frame for the client's shape is skipped.
// Pushed messages count in Backlog and against the queue bound of live
// messages, but Push itself never closes the client: the caller paces
// itself with Backlog. It reports false when the client is closing.
func (c *Client) Push(msgs []*Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	for _, m := range msgs {
		cost := c.Cost(m)
		if cost == 0 {
			continue
		}
		if c.queue == nil {
			c.queue = c.hub.shardOf(c).getArray()
		}
		c.queue = append(c.queue, m)
		c.queued += cost
	}
	c.wakeLocked()
	return true
}

// Cost is what m adds to the client's backlog (and its queue bound) when
// pushed: its frame's bytes plus a fixed cost per message; 0 for a
// message that has no frame for the client's shape.
func (c *Client) Cost(m *Message) int {
	f := m.Frames[c.shape]
	if f == nil {
		return 0
	}
	return len(f) + entryCost
}

// Backlog returns the cost of what is queued and not yet taken by the
// writer (frame bytes plus a fixed cost per message), and whether the
// client is closing.
func (c *Client) Backlog() (queued int, closing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued, c.closing
}

// MaxQueueBytes returns the hub's per-client queue bound.
func (c *Client) MaxQueueBytes() int { return c.hub.cfg.MaxQueueBytes }

// HoldLive ends a Park: live messages published from now on are queued
// behind what was pushed, and nothing more is written until ReleaseFunc or the client closes.
func (c *Client) HoldLive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.parked = false
	c.held = true
	c.holdAt = len(c.queue)
}

// ReleaseFunc ends a hold begun by HoldLive: ahead is queued after what
// was pushed before the hold and before the live messages queued since,
// each of which is passed through fix first (fix returns nil to drop it, or
// the message to queue instead, for instance one re-framed). Then the
// writer resumes. fix runs with the client's lock held and must be quick.
//
// floor, if not nil, is the client's position once ahead is delivered:
// live messages published later that it already covers are dropped (a
// message can reach the history, which ahead was taken from, a moment
// before its Publish reaches this client). floor must not be modified
// afterwards.
func (c *Client) ReleaseFunc(ahead []*Message, fix func(*Message) *Message, floor *wsdest.Cursor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || !c.held {
		c.held = false
		c.wakeLocked()
		return
	}
	at := min(c.holdAt, len(c.queue))
	live := c.queue[at:]
	q := make([]*Message, 0, at+len(ahead)+len(live))
	q = append(q, c.queue[:at]...)
	q = append(q, ahead...)
	for _, m := range live {
		if m = fix(m); m != nil {
			q = append(q, m)
		} else {
			c.hub.stats.dropFrames.Add(1)
		}
	}
	cost := 0
	out := q[:0]
	for _, m := range q {
		if n := c.Cost(m); n > 0 {
			out = append(out, m)
			cost += n
		}
	}
	clear(c.queue)
	c.hub.shardOf(c).putArray(c.queue)
	// What is queued now counts as the latest Publish's (see pushLocked):
	// the client has until the end of the next one to work through it.
	c.queue, c.queued, c.pubCost = out, cost, cost
	c.held = false
	c.holdAt = 0
	c.floor = floor
	c.wakeLocked()
}

// covered reports whether m is below the client's floor. c.mu must be
// held.
func (c *Client) covered(m *Message) bool {
	return c.floor != nil && m.Rows > 0 && c.floor.Delivered(m.Partition, m.Offset, m.Row)
}

// Matches reports whether a record with this key goes to the client under
// its subscription.
func (c *Client) Matches(key []byte) bool { return c.sub.matches(key) }
