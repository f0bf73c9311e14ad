package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsdest/wsdest/internal/message"
)

// This file is the client's writer: one state machine, driven from one
// entry point (wakeLocked), that moves a client's queued frames to its
// socket.
//
//	          wakeLocked (work and a connection)
//	stateIdle ─────────────────────────────────▶ stateQueued
//	    ▲                                            │ a worker (or, without the
//	    │ nothing left                               │ pool, a goroutine) takes it
//	    │                                            ▼
//	    └──────────────────────────────────────── stateWriting ◀──┐
//	         more left: back to stateQueued          │   │        │ rest written
//	                                                 │   ▼        │
//	                    close frame written          │  stateBlocked (socket full:
//	                    (WebSocket handshake)        │  a goroutine of its own
//	                                                 ▼  finishes, WriteTimeout)
//	                                           stateClosing ──▶ stateClosed
//	                                  (peer hangs up or CloseGrace passes;
//	                                   teardown reaches stateClosed from any state)
//
// Exactly one goroutine acts as the writer while the state is stateWriting
// or stateBlocked; in stateQueued the client sits once in the pool's run
// queue (or has a goroutine about to start). Nothing else writes to the
// connection. Pacing comes from that queue alone: while the workers keep
// up, a client is written as soon as it has something; when writes back
// up, frames that arrive while a client waits for its turn join its next
// batch, so the frames per system call grow with the real backlog and
// nothing else (idle clients are never in the run queue and cost nothing).

// writerState is where a client's writer is; guarded by Client.mu.
type writerState uint8

const (
	// stateIdle: no writer. The queue is empty, or the client has no
	// connection yet.
	stateIdle writerState = iota
	// stateQueued: waiting for its turn in the pool's run queue, or for
	// its own goroutine to start.
	stateQueued
	// stateWriting: a pool worker or a goroutine writes one batch.
	stateWriting
	// stateBlocked: the socket took only part of a batch; a goroutine of
	// the client's own writes the rest with a WriteTimeout deadline.
	stateBlocked
	// stateClosing: the close frame is written and the connection
	// half-closed; waiting for the peer to hang up, at most CloseGrace.
	stateClosing
	// stateClosed: torn down; nothing is written any more.
	stateClosed
)

var stateNames = [...]string{"idle", "queued", "writing", "blocked", "closing", "closed"}

func (s writerState) String() string { return stateNames[s] }

// entryCost is what one queued entry costs against MaxQueueBytes on top
// of its frame's bytes: the pointer in the queue array (and the array's
// spare capacity) and a share of the message it points to, so that many
// small frames cannot hide under a byte bound.
const entryCost = 64

// maxSpareCap bounds the capacity of the queue arrays that are reused (by
// the client while it is busy, then through its shard's free list).
const maxSpareCap = 256

// maxBatch is the most data frames one write carries: a client with a long
// queue (a large record) is written a piece a turn, so that the others
// get their turns meanwhile and the writer's scratch stays small.
const maxBatch = 512

// maxPingsPerSecond is how many pings a client may send in one second; a
// client that sends more is closed with 1008 "too many pings".
const maxPingsPerSecond = 100

// Client is one connected client.
//
// Its fields are grouped by who owns them.
type Client struct {
	// Set by Add, read-only afterwards.
	hub      *Hub
	id       uint64
	sub      *compiled
	tr       Transport
	onClosed func()
	added    int64 // unix ns
	// from is the Wants snapshot number at Add (see Hub.Wants); for a
	// client of a rate group, moved by Join to the last Publish, and
	// guarded by mu (rate.go).
	from uint64

	// pos is the index in the shard's all, globs or viewed slice, guarded
	// by the shard's mu; for a client of a rate group, in the group's
	// members, guarded by the group's mu.
	pos int

	// Set by the reader (the poller's goroutine), read by the pinger.
	lastRead atomic.Int64 // unix ns of the last read from the peer

	shape message.Shape // set by AddClient, read-only afterwards (here to pack the struct)
	torn  atomic.Bool   // teardown has run

	// Guarded by mu: shared by the publisher, the control senders (pinger,
	// reader) and the writer.
	mu        sync.Mutex
	state     writerState
	keepalive bool // the transport's keepalive is due
	closing   bool // no more data is accepted; closeFrame follows the queue
	closeSent bool // a writer has taken closeFrame
	deflate   bool // the client negotiated permessage-deflate (UseDeflate)
	// parked: live messages are not queued at all (ClientOptions.Park)
	// until Join; see resume.go.
	parked bool
	// shared: backlog is (a tail of) an array other clients read too, a
	// large Publish's (Client.enqueue): never written to, cleared or
	// recycled.
	shared bool
	// slowWrites: the client's raw socket was once full (stateBlocked);
	// with Config.Conflate its writes are bounded in bytes from then on
	// (batchBytes, latest.go).
	slowWrites bool
	pingSec    uint32             // the second (unix) pings are counted in
	pings      uint32             // pings received in pingSec
	conn       Conn               // set once, by Add or Attach, before any writer starts
	raw        syscall.RawConn    // conn's socket for non-blocking writes; nil for other conns
	queue      []*message.Message // data waiting, in order, after backlog
	// backlog is a queue longer than maxBatch that the writer took over,
	// or a large Publish's copy shared with other clients (shared): it
	// writes it maxBatch entries a turn, before queue.
	backlog []*message.Message
	spare   []*message.Message // the writer's emptied batch, reused as the next queue
	// queued is the cost of queue and backlog against MaxQueueBytes:
	// frame bytes plus entryCost per entry.
	queued int
	// checked is the number of the last Publish whose first message
	// checked the queue bound, and pubCost the cost that Publish queued
	// (see pushLocked).
	checked uint64
	pubCost int
	// drain, when not nil, is closed once queued is down to its limit
	// or the client is closing (WaitBacklog, resume.go): one pointer, so
	// that an idle client stays within its allocation size class.
	drain *drainWait
	// latest is the pending set of a client in conflated mode
	// (latest.go); nil for every other client.
	latest *latest
	pong   []byte // the pong answering the most recent ping, not yet taken
	// closeFrame is sent after the queue drains (nil when the transport
	// has none).
	closeFrame []byte
	reason     CloseReason
}

// wakeLocked is the single entry point that starts or wakes the writer:
// every change that may give the writer something to do (data, a control
// frame, a close, a connection) ends with it. It does nothing
// unless the writer is idle and has work. c.mu must be held.
func (c *Client) wakeLocked() {
	if c.state != stateIdle || c.conn == nil || !c.hasWorkLocked() {
		return
	}
	c.state = stateQueued
	c.dispatchLocked()
}

// hasWorkLocked reports whether anything is due. c.mu must be held.
func (c *Client) hasWorkLocked() bool {
	return len(c.queue) > 0 || len(c.backlog) > 0 || c.pong != nil || c.keepalive || c.closing && !c.closeSent ||
		c.readyLocked()
}

// dispatchLocked hands a client in stateQueued to its writer: the pool's
// run queue for a raw socket while the pool runs, otherwise a goroutine of
// the client's own (a connection that is not a raw socket may block in
// Write, as TLS and pipes do, and without the pool nobody else would
// write). c.mu must be held.
func (c *Client) dispatchLocked() {
	if c.raw == nil || !c.hub.pool.push(c) {
		go c.writeLoop()
	}
}

// batch is what one write sends: control frames, data, and maybe the
// close frame.
type batch struct {
	frames [][]byte           // the byte slices to write, in order
	msgs   []*message.Message // the data messages among them, for stats and recycling
	final  bool               // the close frame is the last of frames
	chunk  bool               // msgs is a piece of a backlog: not reused as a queue array
	shared bool               // msgs is a piece of a shared backlog: not cleared either
	// deflate says the data frames must be swapped for their compressed
	// forms (deflateFrames) before the write.
	deflate bool
	first   int // index in frames of the first data frame
	// notSent, when not 0, is the TCP_NOTSENT_LOWAT the raw socket is to
	// be given before the write (latest.go), outside the client's lock.
	notSent int
	// quick: the connection took the batch at once (a raw socket took it
	// whole; another connection within quickWrite), so that a client's
	// piece may grow (latest.piece).
	quick bool
}

// deflateFrames swaps the data frames of b for their permessage-deflate
// forms; it runs outside c.mu, since the first writer to need a frame
// compresses it.
func (c *Client) deflateFrames(b *batch) {
	if !b.deflate {
		return
	}
	for i, m := range b.msgs {
		b.frames[b.first+i] = c.hub.deflatedFrame(m, c.shape)
	}
}

// takeLocked moves everything due into b and reports whether there was
// anything. The state must be stateWriting. c.mu must be held.
func (c *Client) takeLocked(b *batch) bool {
	b.frames, b.msgs, b.final, b.chunk, b.shared, b.deflate = b.frames[:0], nil, false, false, false, false
	b.notSent, b.quick = 0, false
	if c.state != stateWriting {
		return false
	}
	if c.pong != nil {
		b.frames = append(b.frames, c.pong)
		c.pong = nil
	}
	if c.keepalive {
		if k := c.tr.Keepalive(); k != nil {
			b.frames = append(b.frames, k)
		}
		c.keepalive = false
	}
	c.takeLatestLocked(b)
	limit := c.batchBytes()
	if len(c.backlog) == 0 && (len(c.queue) > maxBatch || c.queued > limit) {
		c.backlog, c.queue, c.spare = c.queue, c.spare[:0], nil
	}
	switch {
	case len(c.backlog) > 0:
		n := c.batchLen(c.backlog, limit)
		b.msgs, c.backlog = c.backlog[:n:n], c.backlog[n:]
		b.chunk, b.shared = true, c.shared
		if len(c.backlog) == 0 {
			c.backlog, c.shared = nil, false
		}
	case len(c.queue) > 0:
		b.msgs, c.queue, c.spare = c.queue, c.spare[:0], nil
	}
	b.first = len(b.frames)
	// The frames are replaced by their compressed ones in deflateFrames,
	// outside the lock.
	b.deflate = c.deflate && len(b.msgs) > 0
	for _, m := range b.msgs {
		b.frames = append(b.frames, m.Frames[c.shape])
		c.queued -= c.Cost(m)
	}
	c.signalLocked()
	if c.closing && !c.closeSent && len(c.backlog) == 0 && len(c.queue) == 0 {
		c.closeSent = true
		b.final = true
		if c.closeFrame != nil {
			b.frames = append(b.frames, c.closeFrame)
		}
	}
	return len(b.frames) > 0 || b.final
}

// flushOne is a pool worker's turn for a client in stateQueued: one batch
// with one non-blocking writev. A full socket hands the rest to a
// goroutine of the client's own (stateBlocked); more work puts the client
// back at the end of the run queue.
func (c *Client) flushOne(b *batch, ws *writeScratch) {
	c.mu.Lock()
	if c.state != stateQueued {
		c.mu.Unlock() // torn down while it waited
		return
	}
	c.state = stateWriting
	took := c.takeLocked(b)
	if !took && b.notSent == 0 {
		c.idleLocked()
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if b.notSent != 0 {
		limitNotSent(c.raw, b.notSent)
	}
	if !took {
		// A turn that only set the socket's limit ends as a write does:
		// no other writer sets one meanwhile.
		c.written(b, false)
		return
	}
	c.deflateFrames(b)

	st := c.hub.stats
	n, rest, err := writevNonblock(c.raw, b.frames, ws)
	st.writes.Add(1)
	st.bytes.Add(uint64(n))
	if err != nil {
		clear(b.frames)
		c.teardown(c.reasonOr(ReasonWriteError))
		return
	}
	if len(rest) > 0 {
		st.blocked.Add(1)
		own := batch{frames: append([][]byte(nil), rest...), msgs: b.msgs, final: b.final, chunk: b.chunk, shared: b.shared}
		clear(b.frames)
		c.mu.Lock()
		if c.state == stateWriting {
			c.state = stateBlocked
		}
		c.slowWrites = true
		c.mu.Unlock()
		go c.finishBlocked(own)
		return
	}
	clear(b.frames)
	b.quick = true // taken whole, at once
	c.written(b, false)
}

// finishBlocked writes the rest of a batch the socket did not take, with
// WriteTimeout as the deadline for all of it, then carries on as the
// client's writer.
func (c *Client) finishBlocked(b batch) {
	if !c.writeBlocking(&b, net.Buffers(b.frames)) {
		return
	}
	if c.raw != nil {
		// Non-blocking writes fail once a deadline has passed: leave none.
		_ = c.conn.SetWriteDeadline(time.Time{})
	}
	c.mu.Lock()
	if c.state == stateBlocked {
		c.state = stateWriting
	}
	c.mu.Unlock()
	c.written(&b, false)
}

// writeLoop is the writer on a goroutine of the client's own, for
// connections that are not raw sockets and whenever the pool is not
// running: it writes batch after batch, each with one blocking Write (or
// writev) and a WriteTimeout deadline, until nothing is left.
func (c *Client) writeLoop() {
	var b batch
	var buf *[]byte // the copy of a batch for one Write, from the hub's pool
	defer func() {
		if buf != nil {
			c.hub.bufs.Put(buf)
		}
	}()
	for {
		c.mu.Lock()
		if c.state != stateQueued {
			c.mu.Unlock()
			return
		}
		c.state = stateWriting
		took := c.takeLocked(&b)
		if !took && b.notSent == 0 {
			c.idleLocked()
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if b.notSent != 0 {
			limitNotSent(c.raw, b.notSent)
		}
		if !took {
			if !c.written(&b, true) { // as in flushOne
				return
			}
			continue
		}
		c.deflateFrames(&b)
		var ok bool
		start := time.Now()
		if c.raw != nil {
			ok = c.writeBlocking(&b, net.Buffers(b.frames))
		} else {
			// One Write per batch: a TLS connection then seals the batch
			// in one run of records and one system call.
			if buf == nil {
				buf, _ = c.hub.bufs.Get().(*[]byte)
				if buf == nil {
					buf = new([]byte)
				}
			}
			p := (*buf)[:0]
			for _, f := range b.frames {
				p = append(p, f...)
			}
			ok = c.writeBlocking(&b, net.Buffers{p})
			if cap(p) > 64<<10 {
				p = nil // do not keep a large record's copy
			}
			*buf = p
		}
		clear(b.frames)
		if !ok {
			return
		}
		b.quick = time.Since(start) < quickWrite
		if c.raw != nil {
			_ = c.conn.SetWriteDeadline(time.Time{})
		}
		if !c.written(&b, true) {
			return
		}
	}
}

// writeBlocking writes bufs within WriteTimeout (CloseGrace for the close
// frame, if shorter). On failure it tears the client down and reports
// false.
func (c *Client) writeBlocking(b *batch, bufs net.Buffers) bool {
	wt := c.hub.cfg.WriteTimeout
	if b.final {
		wt = min(wt, c.hub.cfg.CloseGrace)
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(wt))
	n, err := bufs.WriteTo(c.conn)
	c.hub.stats.bytes.Add(uint64(n))
	c.hub.stats.writes.Add(1)
	if err != nil {
		why := ReasonWriteError
		if errors.Is(err, os.ErrDeadlineExceeded) {
			why = ReasonWriteTimeout
		}
		c.recycle(b)
		c.teardown(c.reasonOr(why))
		return false
	}
	return true
}

// written ends a batch that is fully written: counts it, samples its
// latency, finishes a close, and otherwise ends the writer's turn: idle
// when nothing is left, stateQueued when more arrived meanwhile. ownLoop
// says the caller is writeLoop, which then carries on itself unless the
// pool takes over; it reports whether the caller must write again. The
// caller is the writer.
func (c *Client) written(b *batch, ownLoop bool) bool {
	h := c.hub
	h.stats.written.Add(uint64(len(b.msgs)))
	if h.cfg.ObserveLatency != nil && len(b.msgs) > 0 {
		h.sampleLatency(b.msgs[0])
	}
	c.recycle(b)
	if b.final {
		c.closeWritten()
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateWriting {
		return false // torn down meanwhile
	}
	if l := c.latest; l != nil && len(b.msgs) > 0 {
		l.resize(b.quick)
	}
	if !c.hasWorkLocked() {
		c.idleLocked()
		return false
	}
	c.state = stateQueued
	if !ownLoop {
		c.dispatchLocked()
		return false
	}
	if c.raw != nil && h.pool.push(c) {
		return false // the pool runs again: it carries on
	}
	return true
}

// closeWritten runs once the close frame is out: with the WebSocket close
// handshake the connection is half-closed so the peer sees the end of the
// stream, and dropped once the peer hangs up (PeerClosed, or the reader's
// end of stream) or CloseGrace passes; without it, at once.
func (c *Client) closeWritten() {
	if !c.tr.CloseHandshake() {
		c.teardown(c.reasonOr(ReasonClientClosed))
		return
	}
	c.mu.Lock()
	if c.state != stateWriting {
		c.mu.Unlock()
		return
	}
	c.state = stateClosing
	c.mu.Unlock()
	// The grace starts before CloseWrite, which for TLS writes
	// close_notify and may wait for room in the socket: teardown then
	// ends that wait too.
	time.AfterFunc(c.hub.cfg.CloseGrace, func() { c.teardown(c.reasonOr(ReasonClientClosed)) })
	if hc, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
}

// recycle clears a written batch's messages and keeps the array as the
// next queue's unless it grew large or is a piece of a backlog.
func (c *Client) recycle(b *batch) {
	msgs := b.msgs
	if msgs == nil || b.shared {
		return
	}
	clear(msgs)
	if !b.chunk && cap(msgs) <= maxSpareCap {
		c.mu.Lock()
		if c.state != stateClosed && c.spare == nil {
			c.spare = msgs[:0]
		}
		c.mu.Unlock()
	}
}

// idleLocked ends the writer's turn with nothing left to write: the
// client gives its empty queue arrays back to its shard, so that an idle
// client holds none. c.mu must be held.
func (c *Client) idleLocked() {
	c.state = stateIdle
	s := c.hub.shardOf(c)
	if len(c.queue) == 0 {
		s.putArray(c.queue)
		c.queue = nil
	}
	s.putArray(c.spare)
	c.spare = nil
}

// teardown closes the connection and forgets the client. It runs once,
// from whichever goroutine first finds the client finished (a writer that
// failed, the reader, the pinger, the close-grace timer, Shutdown), and is
// the only place that closes conn. A writer still writing sees its write
// fail and stops. The connection is closed after c.mu is released, and
// without writing to it (closeConn): Publish takes c.mu, and a close that
// waits on the peer would stall every client's stream.
func (c *Client) teardown(why CloseReason) {
	if !c.torn.CompareAndSwap(false, true) {
		return
	}
	h := c.hub
	c.mu.Lock()
	conn := c.conn
	c.state = stateClosed
	c.closing = true
	c.signalLocked()
	if c.reason == "" {
		c.reason = why
	}
	why = c.reason
	c.dropQueueLocked()
	c.queue, c.spare = nil, nil // a closed client keeps no arrays
	c.mu.Unlock()
	remote := ""
	debug := h.log.Enabled(context.Background(), slog.LevelDebug)
	if conn != nil {
		if debug {
			// Asked before the close: a netpoll.Socket has no address
			// after it.
			if a := conn.RemoteAddr(); a != nil {
				remote = a.String()
			}
		}
		closeConn(conn)
	}
	h.remove(c)
	h.stats.closed(why)
	if debug {
		h.log.Debug("client closed", "id", c.id, "remote", remote, "transport", c.tr.Name(),
			"reason", string(why), "connected", time.Since(time.Unix(0, c.added)).Round(time.Millisecond))
	}
	if c.onClosed != nil {
		c.onClosed()
	}
	h.gone()
}

// closeConn closes conn without writing to it. A *tls.Conn's Close sends
// close_notify first, waiting up to 5 s for room in the socket of a peer
// that may have stopped reading: the TCP connection under it is closed
// instead. (A clean close has sent close_notify already: closeWritten.)
func closeConn(conn Conn) {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	_ = conn.Close()
}

func (c *Client) reasonOr(why CloseReason) CloseReason {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason != "" {
		return c.reason
	}
	return why
}
