package hub

import (
	"net"
	"syscall"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// Conn is a connection that has completed its handshake. A *net.TCPConn,
// or a connection that is a bare socket of its own (RawSocket, as a
// netpoll.Socket is), is written by the writer pool with non-blocking
// vectored writes (writev) and half-closed after a WebSocket close frame;
// any other net.Conn (a *tls.Conn) is written from a goroutine of the
// client's own with one Write per batch.
type Conn = net.Conn

// RawSocket is a Conn that is a bare non-blocking socket (a
// netpoll.Socket; Linux only). Its RawSocket method returns the socket for
// the writer pool's non-blocking writes: the RawConn's Write calls its
// function with the descriptor, and again each time the socket is
// writable while the function reports false.
type RawSocket interface {
	Conn
	RawSocket() syscall.RawConn
}

// ClientOptions describe a client for Hub.AddClient.
type ClientOptions struct {
	// Sub says which records the client receives, and in which shape.
	Sub Subscription
	// Transport supplies the control framing; nil means WebSocket{}.
	Transport Transport
	// OnClosed, if not nil, is called once, after the connection is
	// closed, from the goroutine that tore the client down.
	OnClosed func()
	// Park keeps live messages away from the client (they are not queued)
	// until Join, while messages pushed with Push are written: a client
	// that starts from a position gets its past first (see resume.go).
	Park bool
}

// ID returns the client's hub-unique id.
func (c *Client) ID() uint64 { return c.id }

// Shape returns the shape of the frames the client receives.
func (c *Client) Shape() message.Shape { return c.shape }

// Touch records that something was read from the peer; clients of a
// transport whose peer answers keepalives are dropped when not touched for
// two ping intervals.
func (c *Client) Touch() { c.lastRead.Store(time.Now().UnixNano()) }

// takes reports whether the client queues m under sub (nil: every key):
// m has a frame of the client's shape that fits its queue (an oversized
// frame is counted once, by Publish). A notice goes to every
// client with a frame for it, whatever its subscription. c.mu must be
// held.
func (c *Client) takes(m *message.Message, sub *compiled) bool {
	f := m.Frames[c.shape]
	return f != nil && len(f) <= c.hub.cfg.MaxQueueBytes && (sub == nil || m.Notice() || sub.matches(m.Key))
}

// enqueue appends the messages of msgs the client takes (under sub) and
// returns how many it queued. With share, msgs is longer than maxBatch and
// in an array no one modifies (Publish's copy): when the client has
// nothing queued and takes every one of them, its backlog becomes msgs
// itself, shared with the other such clients, so that a record of many
// rows costs each client a slice, not a pointer per row.
func (c *Client) enqueue(msgs []*message.Message, sub *compiled, seq uint64, share bool) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.parked {
		return 0
	}
	if share && c.latest == nil && c.shareLocked(msgs, sub, seq) {
		c.wakeLocked()
		return uint64(len(msgs))
	}
	var n uint64
	for _, m := range msgs {
		if !c.takes(m, sub) {
			continue
		}
		if !c.offerLocked(m, seq) {
			break
		}
		n++
	}
	c.wakeLocked()
	return n
}

// shareLocked makes msgs the client's backlog, as enqueue describes, and
// reports whether it could. c.mu must be held.
func (c *Client) shareLocked(msgs []*message.Message, sub *compiled, seq uint64) bool {
	if len(c.queue) > 0 || len(c.backlog) > 0 {
		return false
	}
	cost := 0
	for _, m := range msgs {
		if !c.takes(m, sub) {
			return false
		}
		cost += c.Cost(m)
	}
	// Nothing is queued, so nothing is older than this Publish: the bound
	// holds (see pushLocked).
	c.backlog, c.shared = msgs, true
	c.queued, c.pubCost, c.checked = cost, cost, seq
	return true
}

// enqueueOne is enqueue for one message of an exact-key subscription.
func (c *Client) enqueueOne(m *message.Message, seq uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.parked || !c.takes(m, nil) {
		return 0
	}
	ok := c.offerLocked(m, seq)
	c.wakeLocked() // also when the bound closed it: the close frame goes out
	if !ok {
		return 0
	}
	return 1
}

// offerLocked queues m, a message of the Publish numbered seq: into the
// pending set of a client in conflated mode (latest.go), otherwise
// straight to the queue. It reports false when the client was closed.
// c.mu must be held.
func (c *Client) offerLocked(m *message.Message, seq uint64) bool {
	if c.latest != nil {
		return c.holdLocked(m)
	}
	return c.pushLocked(m, seq)
}

// pushLocked appends m, a message of the Publish numbered seq, to the
// queue. The bound is checked at the first message of each Publish,
// against what the client still holds from before the previous Publish: a
// client holding more than MaxQueueBytes of that is closed with 1008 "too
// slow" and pushLocked reports false. So a client that keeps up takes
// every message of a Publish (one Kafka fetch) and has until the end of
// the next one to work through it: a large record (a Quix record may
// decode into many rows) reaches it whole. The messages themselves are
// shared by every client; a slow client holds at most MaxQueueBytes plus
// two fetches' entries beyond what the others hold. With Config.Conflate,
// a client over the bound switches to conflated mode instead
// (conflateLocked), unless it is in it already. c.mu must be held.
func (c *Client) pushLocked(m *message.Message, seq uint64) bool {
	cost := c.Cost(m)
	if seq != c.checked {
		// The previous Publish's entries are at the tail of the queue,
		// after whatever the writer has not taken yet.
		older := c.queued - min(c.queued, c.pubCost)
		c.checked, c.pubCost = seq, 0
		if older+cost > c.hub.cfg.MaxQueueBytes {
			if c.hub.cfg.Conflate {
				return c.conflateLocked(m)
			}
			c.closeLocked(wsframe.ClosePolicyViolation, wsframe.ReasonTooSlow, ReasonQueueFull, false)
			return false
		}
	}
	if c.queue == nil {
		c.queue = c.hub.shardOf(c).getArray()
	}
	c.queue = append(c.queue, m)
	c.queued += cost
	c.pubCost += cost
	return true
}

// sendKeepalive queues the transport's keepalive unless the client is
// closing.
func (c *Client) sendKeepalive() {
	c.mu.Lock()
	if !c.closing {
		c.keepalive = true
		c.wakeLocked()
	}
	c.mu.Unlock()
}

// UseDeflate makes the client receive permessage-deflate frames (RFC
// 7692, no context takeover): call it before Attach, once the handshake
// negotiated the extension. Each frame is compressed once and shared by
// every such client of its shape.
func (c *Client) UseDeflate() {
	c.mu.Lock()
	c.deflate = true
	c.mu.Unlock()
}

// Attach gives a client added without a connection (Hub.AddClient with a
// nil conn, while its handshake was being answered) its connection, and
// starts writing what was queued meanwhile. If the client is already torn
// down, conn is closed.
func (c *Client) Attach(conn Conn) {
	c.hub.limitConn(conn)
	c.mu.Lock()
	if c.torn.Load() {
		c.mu.Unlock()
		closeConn(conn)
		return
	}
	c.setConn(conn)
	c.wakeLocked()
	c.mu.Unlock()
}

// setConn sets conn and, for a TCP socket or a RawSocket, raw. c.mu must
// be held or the client not yet shared.
func (c *Client) setConn(conn Conn) {
	c.conn = conn
	c.raw = rawOf(conn)
}

// rawOf returns the socket of a TCP connection or a RawSocket, for
// non-blocking writes, or nil.
func rawOf(conn Conn) syscall.RawConn {
	if rs, ok := conn.(RawSocket); ok {
		return rs.RawSocket()
	}
	return rawConnOf(conn)
}

// limitConn, with Config.Conflate, makes a client's raw socket hold at
// most about connNotSentBytes not yet sent, before its first write. It
// is called with no lock held.
func (h *Hub) limitConn(conn Conn) {
	if !h.cfg.Conflate {
		return
	}
	if raw := rawOf(conn); raw != nil {
		limitNotSent(raw, connNotSentBytes)
	}
}

// Pong answers a client's ping with payload. Pongs are coalesced: only
// the most recent ping not yet answered is (RFC 6455 section 5.5.3 allows
// it), so a ping flood holds at most one pong. A client that sends more
// than 100 pings in a second is closed with 1008 "too many pings".
func (c *Client) Pong(payload []byte) {
	sec := uint32(time.Now().Unix())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	if sec != c.pingSec {
		c.pingSec, c.pings = sec, 0
	}
	c.pings++
	if c.pings > maxPingsPerSecond {
		c.closeLocked(wsframe.ClosePolicyViolation, wsframe.ReasonTooManyPings, ReasonControlFlood, false)
		c.wakeLocked()
		return
	}
	c.pong = c.tr.Pong(payload)
	c.wakeLocked()
}

// Close starts a clean close: the close frame with code and reason is sent
// after what is queued (graceful codes 1000 and 1001) or instead of it (any
// other code), then, with the WebSocket closing handshake, the connection is
// half-closed and dropped once the client answers or CloseGrace passes.
// Calling Close again has no effect.
func (c *Client) Close(code uint16, reason string, why CloseReason) {
	c.mu.Lock()
	keep := code == wsframe.CloseNormal || code == wsframe.CloseGoingAway
	c.closeLocked(code, reason, why, keep)
	c.wakeLocked()
	c.mu.Unlock()
}

func (c *Client) closeLocked(code uint16, reason string, why CloseReason, keepQueue bool) {
	if c.closing {
		return
	}
	c.closing = true
	c.reason = why
	c.closeFrame = c.tr.CloseFrame(code, reason)
	c.dropLatestLocked() // held messages are not flushed: latest wins, and none is owed
	if !keepQueue {
		c.dropQueueLocked()
	}
	c.signalLocked()
}

// dropQueueLocked discards the queued frames. c.mu must be held.
func (c *Client) dropQueueLocked() {
	c.hub.stats.dropFrames.Add(uint64(len(c.queue) + len(c.backlog)))
	c.dropLatestLocked()
	clear(c.queue)
	if !c.shared {
		clear(c.backlog)
	}
	c.queue, c.backlog, c.shared = c.queue[:0], nil, false
	c.queued = 0
	c.pong = nil
	c.keepalive = false
}

// PeerClosed handles the end of the peer's side: a close frame (after which
// the peer sends nothing more) or end of stream. If the server's close
// frame has been sent, the handshake is complete and the connection is
// dropped; otherwise the frames still queued are discarded and the close
// frame (1000, or the code the server was already closing with) answers
// the peer's after at most the batch being written.
func (c *Client) PeerClosed(why CloseReason) {
	c.mu.Lock()
	if c.closeSent {
		c.mu.Unlock()
		c.teardown(c.reasonOr(why))
		return
	}
	if c.closing {
		c.dropQueueLocked()
	} else {
		c.closeLocked(wsframe.CloseNormal, "", why, false)
	}
	c.wakeLocked()
	c.mu.Unlock()
}

// Abort drops the connection at once, without a close frame: for a reader
// that found the peer gone or broken.
func (c *Client) Abort(why CloseReason) { c.abort(why) }

func (c *Client) abort(why CloseReason) {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.reason = why
		c.signalLocked()
	}
	c.mu.Unlock()
	c.teardown(c.reasonOr(why))
}
