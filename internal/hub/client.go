package hub

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsdest/wsdest/internal/wsframe"
)

// Conn is a connection that has completed the WebSocket handshake. A
// *net.TCPConn gets vectored writes (writev) and a half-close after the close
// frame; any other net.Conn works too.
type Conn = net.Conn

// maxSpareCap bounds the capacity of the queue arrays that are reused
// (by the client while it is busy, then through its shard's free list).
const maxSpareCap = 256

// Client is one connected WebSocket client.
//
// Ownership: the publisher and control senders append to queue under mu.
// The writer, of which there is at most one at a time (writing), swaps the
// queue out under mu and writes it without the lock; the writer is either a
// pool worker (flushFast), a waiting slot in the pool's wheel, or a
// goroutine of the client's own (write, writeRest), and ownership passes
// between them with writing still set. lastWrite and deadline belong to
// whichever holds it. conn is set once, by Add or Attach, under mu, before
// any writer starts. teardown runs exactly once and is the only place that
// closes conn.
type Client struct {
	hub      *Hub
	conn     Conn            // nil while the handshake is under way
	raw      syscall.RawConn // conn's socket, for non-blocking writes; nil if conn is not a *net.TCPConn
	id       uint64
	shape    Shape
	sub      compiled
	pos      int // index in the shard's all or globs slice; guarded by the shard's mu
	onClosed func()

	lastRead atomic.Int64 // unix ns of the last read from the peer

	// lastWrite is when the last batch write ended, and deadline the write
	// deadline set on conn; both owned by the writer.
	lastWrite time.Time
	deadline  time.Time

	mu         sync.Mutex
	queue      [][]byte // frames waiting, in order
	spare      [][]byte // the writer's emptied batch, reused as the next queue
	queued     int      // bytes in queue
	writing    bool     // a writer owns the connection (see above)
	closing    bool     // no more data frames are accepted
	closeFrame []byte   // sent after the queue drains, when closing
	closeSent  bool     // the writer has taken closeFrame to send it
	reason     CloseReason

	torn atomic.Bool
}

// ID returns the client's hub-unique id.
func (c *Client) ID() uint64 { return c.id }

// Shape returns the shape of the frames the client receives.
func (c *Client) Shape() Shape { return c.shape }

// Touch records that something was read from the peer; clients that are not
// touched for two ping intervals are dropped.
func (c *Client) Touch() { c.lastRead.Store(time.Now().UnixNano()) }

// enqueue appends the frames of msgs that match (every message when sub is
// nil) and returns how many it queued.
func (c *Client) enqueue(msgs []*Message, sub *compiled) uint64 {
	var n uint64
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return 0
	}
	for _, m := range msgs {
		f := m.Frames[c.shape]
		if f == nil || len(f) > c.hub.cfg.MaxQueueBytes || sub != nil && !sub.matches(m.Key) {
			continue // an oversized frame is counted once, by Publish
		}
		if !c.pushLocked(f) {
			break
		}
		n++
	}
	start := c.startLocked()
	c.mu.Unlock()
	if start {
		c.hub.kick(c)
	}
	return n
}

// pushLocked appends f to the queue, or, when that would pass
// MaxQueueBytes, closes the client with 1008 "too slow" and reports false.
// c.mu must be held.
func (c *Client) pushLocked(f []byte) bool {
	if c.queued+len(f) > c.hub.cfg.MaxQueueBytes {
		c.closeLocked(wsframe.ClosePolicyViolation, "too slow", ReasonQueueFull, false)
		return false
	}
	if c.queue == nil {
		c.queue = c.hub.shardOf(c).getArray()
	}
	c.queue = append(c.queue, f)
	c.queued += len(f)
	return true
}

// takeBatchLocked hands the writer the queued frames, leaving it an empty
// queue on the spare array. c.mu must be held.
func (c *Client) takeBatchLocked() [][]byte {
	batch := c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	c.queued = 0
	return batch
}

// nextWrite is the earliest time the write budget lets the writer write
// again; zero spacing means at once.
func (c *Client) nextWrite() time.Time {
	return c.lastWrite.Add(c.hub.writeSpacing())
}

func (c *Client) enqueueOne(m *Message) uint64 {
	return c.enqueue([]*Message{m}, nil)
}

// sendControl queues a control frame (ping, pong) unless the client is
// closing. Control frames count against the queue bound like data.
func (c *Client) sendControl(f []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.pushLocked(f)
	start := c.startLocked()
	c.mu.Unlock()
	if start {
		c.hub.kick(c)
	}
}

// setConn sets conn and, for a TCP socket, raw. c.mu must be held or the
// client not yet shared.
func (c *Client) setConn(conn Conn) {
	c.conn = conn
	c.raw = rawConnOf(conn)
}

// Attach gives a client added without a connection (Hub.Add with a nil
// conn, while its handshake was being answered) its connection, and starts
// writing what was queued meanwhile.
func (c *Client) Attach(conn Conn) {
	c.mu.Lock()
	if c.torn.Load() {
		c.mu.Unlock()
		_ = conn.Close()
		return
	}
	c.setConn(conn)
	start := c.startLocked()
	c.mu.Unlock()
	if start {
		c.hub.kick(c)
	}
}

// Pong answers a client's ping with payload.
func (c *Client) Pong(payload []byte) {
	c.sendControl(wsframe.Control(wsframe.OpPong, payload))
}

// startLocked reports whether the caller must start a writer, marking one
// as running. c.mu must be held.
func (c *Client) startLocked() bool {
	if c.writing || c.conn == nil || (len(c.queue) == 0 && !c.closing) || c.torn.Load() {
		return false
	}
	c.writing = true
	return true
}

// Close starts a clean close: the close frame with code and reason is sent
// after what is queued (graceful codes 1000 and 1001) or instead of it (any
// other code), then the connection is half-closed and dropped once the
// client answers or CloseGrace passes. Calling Close again has no effect.
func (c *Client) Close(code uint16, reason string, why CloseReason) {
	c.mu.Lock()
	keep := code == wsframe.CloseNormal || code == wsframe.CloseGoingAway
	c.closeLocked(code, reason, why, keep)
	start := c.startLocked()
	c.mu.Unlock()
	if start {
		go c.write()
	}
}

func (c *Client) closeLocked(code uint16, reason string, why CloseReason, keepQueue bool) {
	if c.closing {
		return
	}
	c.closing = true
	c.reason = why
	c.closeFrame = wsframe.Close(code, reason)
	if !keepQueue {
		c.dropQueueLocked()
	}
}

// dropQueueLocked discards the queued frames. c.mu must be held.
func (c *Client) dropQueueLocked() {
	c.hub.stats.dropFrames.Add(uint64(len(c.queue)))
	clear(c.queue)
	c.queue = c.queue[:0]
	c.queued = 0
}

// idleLocked ends the writer's turn with the queue empty: the client gives
// its queue arrays back to its shard, so that an idle client holds none.
// c.mu must be held.
func (c *Client) idleLocked() {
	c.writing = false
	s := c.hub.shardOf(c)
	s.putArray(c.queue)
	s.putArray(c.spare)
	c.queue, c.spare = nil, nil
}

// Closing reports whether the server has started closing the client.
func (c *Client) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
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
	start := c.startLocked()
	c.mu.Unlock()
	if start {
		go c.write()
	}
}

// abort drops the connection at once, without a close frame.
func (c *Client) abort(why CloseReason) {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.reason = why
	}
	c.mu.Unlock()
	c.teardown(c.reasonOr(why))
}

// Abort drops the connection at once, for a reader that found the peer
// gone or broken.
func (c *Client) Abort(why CloseReason) { c.abort(why) }

func (c *Client) reasonOr(why CloseReason) CloseReason {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason != "" {
		return c.reason
	}
	return why
}

// write is the client's writer goroutine: it drains the queue in batches,
// one vectored write each, until the queue is empty, then exits. Writes are
// spaced by the write budget (Hub.writeSpacing): frames that arrive while
// the writer waits or writes join the next batch, so under load the system
// calls per frame fall.
func (c *Client) write() {
	st := c.hub.stats
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			if !c.closing && c.raw != nil && !c.deadline.IsZero() {
				// The pool's non-blocking writes fail on an expired
				// deadline: leave none behind.
				c.mu.Unlock()
				c.deadline = time.Time{}
				_ = c.conn.SetWriteDeadline(time.Time{})
				continue
			}
			if !c.closing {
				c.idleLocked()
				c.mu.Unlock()
				return
			}
			f := c.closeFrame
			c.closeSent = true
			c.mu.Unlock()
			c.finish(f)
			return
		}
		c.mu.Unlock()
		if d := time.Until(c.nextWrite()); d > 0 {
			time.Sleep(d)
		}
		c.mu.Lock()
		batch := c.takeBatchLocked()
		c.mu.Unlock()

		frames := len(batch)
		bufs := net.Buffers(batch)
		// Setting a deadline costs about as much as a tenth of the write,
		// so it is moved only when less than half of WriteTimeout is left:
		// a write may then take between WriteTimeout/2 and WriteTimeout.
		wt := c.hub.cfg.WriteTimeout
		if now := time.Now(); c.deadline.Sub(now) < wt/2 {
			c.deadline = now.Add(wt)
			_ = c.conn.SetWriteDeadline(c.deadline)
		}
		n, err := bufs.WriteTo(c.conn)
		st.writes.Add(1)
		st.bytes.Add(uint64(n))
		c.recycle(batch)
		if err != nil {
			c.teardown(c.reasonOr(writeErrReason(err)))
			return
		}
		st.written.Add(uint64(frames))
		c.lastWrite = time.Now()
	}
}

func writeErrReason(err error) CloseReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ReasonWriteTimeout
	}
	return ReasonWriteError
}

// finish sends the close frame, half-closes the connection so the peer sees
// the end of the stream, and drops the connection once the peer hangs up
// (the reader calls PeerClosed) or CloseGrace passes.
func (c *Client) finish(closeFrame []byte) {
	if c.torn.Load() {
		return
	}
	c.deadline = time.Now().Add(min(c.hub.cfg.WriteTimeout, c.hub.cfg.CloseGrace))
	_ = c.conn.SetWriteDeadline(c.deadline)
	if _, err := c.conn.Write(closeFrame); err != nil {
		c.teardown(c.reasonOr(ReasonWriteError))
		return
	}
	if hc, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
	time.AfterFunc(c.hub.cfg.CloseGrace, func() { c.teardown(c.reasonOr(ReasonClientClosed)) })
}

// teardown closes the connection and forgets the client. It runs once.
func (c *Client) teardown(why CloseReason) {
	if !c.torn.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.closing = true
	if c.reason == "" {
		c.reason = why
	}
	c.hub.stats.dropFrames.Add(uint64(len(c.queue)))
	c.queue, c.spare, c.queued = nil, nil, 0
	c.mu.Unlock()
	c.hub.remove(c)
	c.hub.stats.closed(why)
	if c.onClosed != nil {
		c.onClosed()
	}
	c.hub.gone()
}
