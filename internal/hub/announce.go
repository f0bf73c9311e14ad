package hub

import "github.com/wsdest/wsdest/internal/message"

// Announcements: notices about the stream as a whole (its data has become
// unavailable, or is available again), as opposed to the notices about one
// client's own stream that the history pushes (gap, reset). One message,
// its frames built once, is queued for every client that has a frame of its
// shape, whatever its subscription; plain WebSocket clients get no frame,
// so nothing. A standing announcement is also queued, first, for every
// client added until the next one: a client that connects while the data is
// unavailable is told so at once.

// Announce queues m for every client that has a frame of its shape, behind
// what the client already holds, and with standing keeps it for the
// clients added until the next Announce (which replaces it, standing or
// not). Like Push, it is not checked against the queue bound: a notice is
// a few bytes, and a client over the bound is closed by the next Publish.
// It never blocks on a client. Safe for concurrent use; announcements
// reach every client in the order of the Announce calls.
func (h *Hub) Announce(m *message.Message, standing bool) {
	h.announceMu.Lock()
	defer h.announceMu.Unlock()
	h.standing = nil
	if standing {
		h.standing = m
	}
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for c := range s.members {
			c.announce(m)
		}
		s.mu.RUnlock()
	}
}

// announce queues m for the client, as Push does (nothing when it has no
// frame of the client's shape, or the client is closing).
func (c *Client) announce(m *message.Message) { c.Push([]*message.Message{m}) }
