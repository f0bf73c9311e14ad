package hub

import (
	"context"

	"github.com/wsdest/wsdest/internal/message"
)

// This file is the hub's side of clients that start from a position (the
// history package drives it). Such a client is added with
// ClientOptions.Park: Publish passes it by, while its catch-up queues the
// past with Push, paced by WaitBacklog. Join then makes it an ordinary
// client from the next Publish on. The history package calls Join only
// between two Publishes, once the client has everything published so far
// (see the history package's doc): the hub itself checks nothing.

// Push queues catch-up messages for a client, in order, behind what is
// queued (a notice behind what the client holds in a pending set of its
// own, latest.go); a message without a frame for the client's shape is
// skipped.
// Pushed messages count in the backlog and against the queue bound of
// live messages, but Push itself never closes the client: the caller
// paces itself with WaitBacklog. It reports false when the client is
// closing.
func (c *Client) Push(msgs []*message.Message) bool {
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
		if c.latest != nil && m.Notice() {
			// An announcement to a client holding messages of its own
			// (latest.go) takes its place behind them: it is never
			// superseded, and it is a few bytes.
			c.latest.hold(m, 0)
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
func (c *Client) Cost(m *message.Message) int {
	f := m.Frames[c.shape]
	if f == nil {
		return 0
	}
	return len(f) + entryCost
}

// WaitBacklog waits until the cost of what is queued and not yet taken by
// the writer (frame bytes plus a fixed cost per message) is at most
// limit, and returns that cost; or until the client is closing or ctx is
// done, and then reports false. The writer wakes it: there is no polling.
func (c *Client) WaitBacklog(ctx context.Context, limit int) (queued int, ok bool) {
	c.mu.Lock()
	for !c.closing && c.queued > limit {
		if c.drain == nil || limit < c.drain.at {
			if c.drain == nil {
				c.drain = &drainWait{ch: make(chan struct{})}
			}
			c.drain.at = limit
		}
		ch := c.drain.ch
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, false
		}
		c.mu.Lock()
	}
	queued, ok = c.queued, !c.closing
	c.mu.Unlock()
	return queued, ok
}

// drainWait is what WaitBacklog waits for: ch is closed once the
// client's queued cost is down to at.
type drainWait struct {
	ch chan struct{}
	at int
}

// signalLocked wakes WaitBacklog once the backlog is down to its limit
// or the client is closing. c.mu must be held.
func (c *Client) signalLocked() {
	if c.drain != nil && (c.closing || c.queued <= c.drain.at) {
		close(c.drain.ch)
		c.drain = nil
	}
}

// MaxQueueBytes returns the hub's per-client queue bound.
func (c *Client) MaxQueueBytes() int { return c.hub.cfg.MaxQueueBytes }

// Join ends a Park: from the next Publish on, the client gets live
// messages as every other client does, queued behind what was pushed. Call
// it between two Publishes (the caller orders it with the publisher). It
// reports false when the client is closing.
func (c *Client) Join() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parked && c.sub.rate() != nil {
		// Its rate group hands on only what the next Publishes bring:
		// the catch-up brought everything before (rate.go).
		c.from = c.hub.lastPub.Load()
	}
	c.parked = false
	return !c.closing
}

// Matches reports whether a record with this key goes to the client under
// its subscription.
func (c *Client) Matches(key []byte) bool { return c.sub.matches(key) }
