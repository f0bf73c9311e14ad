// Package hub is the fan-out core of wsdest: it keeps the set of connected
// clients with their subscriptions, routes each published message to the
// clients it matches, and owns every client's bounded send queue, its single
// writer and the policy that closes clients which do not keep up.
//
// The hub knows nothing about HTTP or Kafka. It is given connections that
// have already completed their handshake and messages (message.Message,
// the vocabulary it shares with the encoder, the history and the server)
// whose frames are already encoded, one per message.Shape.
//
// # Clients and transports
//
// Hub.AddClient registers a client with ClientOptions: its Subscription,
// its Transport (the control framing: keepalive, pong, close frame and
// whether a closing handshake follows; WebSocket{} by default, an SSE
// transport supplies a comment as keepalive, no pongs and a bare end of
// stream), an OnClosed callback, and Park.
//
// A client that starts from a position (resume.go, driven by the history
// package) is added with Park: Publish passes it by while its past is
// pushed to it (Push, paced by WaitBacklog), until Join makes it an
// ordinary client from the next Publish on. A notice (a message of no
// partition, such as the reset notice of a recreated topic) goes to every
// client that has a frame for it, whatever its subscription. SSE clients
// have their own shapes (message.ShapeSSEPlain, message.ShapeSSEEnvelope),
// whose frames are events, and the SSE transport; Heartbeat sends their
// keepalive.
//
// # Writing
//
// Publishing never blocks on a client: a message is appended to each
// matching client's queue under that client's own lock. Each client has one
// writer, a state machine (writer.go) started only while the client has
// something to write: raw TCP sockets are written by a pool of workers (one
// per CPU but one, so that the Kafka consumer and the epoll loop always find
// a CPU) with one non-blocking writev per batch, taken in turn from one run
// queue; a socket that is full, and every other connection (TLS), is
// written by a goroutine of the client's own with a WriteTimeout deadline.
// There is no added delay: batches grow only when the workers fall behind.
// A queue longer than 512 frames is written 512 frames a turn. A Publish
// of more than 512 messages (a record of many rows, a large fetch) is
// copied once, and each client that has nothing queued and
// takes every message of it (an exact-key client: every message of a run
// of more than 512 of its key) keeps that copy as its backlog instead of a
// pointer per message of its own.
//
// A client with a rate bound (Subscription.MaxRate) gets what its rate
// group hands on: the clients of one subscription, view and rate share
// one latest-wins pending set, which hands each key on at most at the
// rate, in publish order (rate.go). With Config.Conflate, a client that
// fell behind keeps at most one pending message per key and hands the
// latest to the writer, in publish order (latest.go).
//
// A client that negotiated permessage-deflate (Client.UseDeflate) gets
// each frame compressed with no context takeover: the first writer that
// needs a message's compressed frame builds it (message.Message.Deflated),
// and every other such client of that shape shares the same bytes.
package hub

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// Config holds the hub's limits. Zero values mean the documented defaults.
type Config struct {
	// Shards is the number of subscriber shards; subscribe and unsubscribe
	// lock one shard, publishing read-locks one shard at a time. Default
	// 8 × GOMAXPROCS.
	Shards int
	// MaxQueueBytes bounds what one client holds in its queue: each
	// frame's bytes plus a fixed cost per entry. It is checked at the first
	// message of each Publish, against what the client still holds from
	// before the previous Publish; a client over it is closed with 1008
	// "too slow" (see Client.pushLocked). Default 4 MiB.
	MaxQueueBytes int
	// WriteTimeout bounds the wait for a client's socket: a write that
	// the socket cannot take at once must finish within it, or the client
	// is dropped (ReasonWriteTimeout). Default 10 s.
	WriteTimeout time.Duration
	// PingInterval is how often clients are pinged. A client from which
	// nothing was read for two intervals is dropped. Default 30 s; negative
	// disables pings.
	PingInterval time.Duration
	// CloseGrace is how long the hub waits for a client to answer its close
	// frame before dropping the connection. Default 2 s.
	CloseGrace time.Duration
	// Logger receives the hub's log lines. Default slog.Default().
	Logger *slog.Logger
	// DeflateLevel is the compress/flate level of permessage-deflate
	// frames (Client.UseDeflate). Default 1 (flate.BestSpeed), which on
	// JSON telemetry saves nearly as much as higher levels at a fraction
	// of the CPU.
	DeflateLevel int
	// DeflateThreshold is the smallest frame that is compressed for
	// permessage-deflate clients; smaller ones go out uncompressed (RFC
	// 7692 allows either per message). Default 128 bytes.
	DeflateThreshold int
	// ObserveLatency, if not nil, is called by writers with the time from
	// a record's Kafka timestamp to the end of the write that delivered
	// it, for one sampled write at most every 100 ms in all (so about 10
	// times a second). It must be safe for concurrent use and quick.
	ObserveLatency func(time.Duration)
	// Conflate is SLOW_CLIENTS=conflate: a client over MaxQueueBytes is
	// not closed but switched to conflated mode, where it gets each key's
	// latest message until it catches up (latest.go). Default false: such
	// a client is closed with 1008 "too slow".
	Conflate bool
	// ConflatedNotice and CaughtUpNotice are the notices a client gets
	// when conflation starts and when it ends (encode.NoticeAll of
	// encode.ConflatedNotice and encode.CaughtUpNotice), built once and
	// shared; nil: none is sent.
	ConflatedNotice, CaughtUpNotice *message.Message
}

// Defaults of Config.
const (
	DefaultMaxQueueBytes = 4 << 20
	DefaultWriteTimeout  = 10 * time.Second
	DefaultPingInterval  = 30 * time.Second
	DefaultCloseGrace    = 2 * time.Second
	// DefaultDeflateLevel is flate.BestSpeed.
	DefaultDeflateLevel     = 1
	DefaultDeflateThreshold = 128
)

func (c *Config) setDefaults() {
	if c.Shards <= 0 {
		c.Shards = 8 * runtime.GOMAXPROCS(0)
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.CloseGrace <= 0 {
		c.CloseGrace = DefaultCloseGrace
	}
	if c.DeflateLevel == 0 {
		c.DeflateLevel = DefaultDeflateLevel
	}
	if c.DeflateThreshold <= 0 {
		c.DeflateThreshold = DefaultDeflateThreshold
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Hub routes messages to clients. Its methods are safe for concurrent use.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	shards []shard
	nextID atomic.Uint64
	shapes [message.NumShapes]atomic.Int64 // clients per shape, for Wants
	stats  *counters

	// wantSeq numbers the snapshots Wants hands out (see Wants); pubSeq
	// is the last one Publish used, owned by the publishing goroutine.
	wantSeq atomic.Uint64
	pubSeq  uint64

	lastSample atomic.Int64 // unix ns of the last ObserveLatency sample

	start time.Time // the origin of clock; read-only

	// live counts the clients not yet torn down; idle is closed whenever
	// live is zero and replaced when it rises again. Not a WaitGroup:
	// clients may be added while Shutdown waits, even once none is left.
	liveMu sync.Mutex
	live   int
	idle   chan struct{}

	// stopping is set by Shutdown: clients added from then on (their
	// handshake was in flight) are closed with 1001 at once.
	stopping atomic.Bool

	lastOversizedLog atomic.Int64 // unix ns of the last oversized-frame warning

	pool *pool // the writers for raw sockets; running while Run is

	// all is the compiled subscription shared by every client that takes
	// every record, so that those clients carry none of their own.
	all compiled

	// views are the distinct views of the clients that have one (view.go);
	// viewed counts those clients, for Wants.
	views   views
	viewed  atomic.Int64
	viewPub viewPublish // owned by the publishing goroutine

	// rates are the rate groups of the clients with a max_rate (rate.go);
	// rated counts those clients. handSeq numbers the groups' hand-overs,
	// for their clients' queue bound, and lastPub is the number of the
	// last Publish, for Join.
	rates   rates
	rated   atomic.Int64
	ratePub ratePublish // owned by the publishing goroutine
	handSeq atomic.Uint64
	lastPub atomic.Uint64

	// deflaters holds *wsframe.Deflater at Config.DeflateLevel.
	deflaters sync.Pool

	// bufs holds *[]byte: the buffers in which writers of connections that
	// are not raw sockets join a batch for its one Write.
	bufs sync.Pool

	// announceMu orders Announce (which holds it) against AddClient
	// (which reads it while it puts a client in its shard), so that a
	// client gets either an announcement or the standing one that replaced
	// it, never both (announce.go).
	announceMu sync.RWMutex
	standing   *message.Message // guarded by announceMu; nil when none stands
}

// shard holds a subset of the clients, indexed for routing. mu guards every
// field; Publish holds it for reading while it enqueues.
type shard struct {
	mu      sync.RWMutex
	all     []*Client            // clients that take every record
	exact   map[string][]*Client // clients with only exact keys, by key
	globs   []*Client            // clients with at least one pattern
	viewed  []*Client            // clients with a view (any keys)
	members map[*Client]struct{} // every client of the shard

	freeMu sync.Mutex
	free   [][]*message.Message // empty queue arrays that idle clients gave back; guarded by freeMu
}

// maxFree bounds a shard's free list of queue arrays.
const maxFree = 256

// getArray returns an empty queue array, reused when one is free.
func (s *shard) getArray() []*message.Message {
	s.freeMu.Lock()
	defer s.freeMu.Unlock()
	if n := len(s.free); n > 0 {
		a := s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
		return a
	}
	return make([]*message.Message, 0, 8)
}

// putArray keeps an array for getArray, unless it is nil, large, or the
// free list is full. The arrays clients give back hold no frames: a batch
// is cleared once written (Client.recycle), and a queue is only given back
// empty.
func (s *shard) putArray(a []*message.Message) {
	if a == nil || cap(a) > maxSpareCap {
		return
	}
	s.freeMu.Lock()
	if len(s.free) < maxFree {
		s.free = append(s.free, a[:0])
	}
	s.freeMu.Unlock()
}

// New returns a hub with cfg's limits.
func New(cfg Config) *Hub {
	cfg.setDefaults()
	h := &Hub{
		cfg:    cfg,
		log:    cfg.Logger,
		shards: make([]shard, cfg.Shards),
		stats:  newCounters(),
		idle:   make(chan struct{}),
		pool:   newPool(),
		start:  time.Now(),
	}
	close(h.idle)
	h.all = compiled{all: true}
	for i := range h.shards {
		h.shards[i].exact = make(map[string][]*Client)
		h.shards[i].members = make(map[*Client]struct{})
	}
	return h
}

// Wants reports, for each shape, whether any client currently receives it,
// so that encoders build only the frames someone will read. Call it from
// the publishing goroutine before building the messages of each Publish:
// the next Publish goes to the clients this snapshot counted, and a client
// added after it starts with the Publish after that, so that no client
// gets a batch whose frames for its shape were never built. (Such a
// client's handshake was not yet answered when the batch's records were
// fetched.)
func (h *Hub) Wants() [message.NumShapes]bool {
	h.wantSeq.Add(1) // before the counts: see Add
	var w [message.NumShapes]bool
	for i := range w {
		w[i] = h.shapes[i].Load() > 0
	}
	// Views read the record's value in its plain frame.
	w[message.ShapePlain] = w[message.ShapePlain] || h.viewed.Load() > 0
	return w
}

// sampleLatency calls ObserveLatency for m unless another write was
// sampled less than 100 ms ago.
func (h *Hub) sampleLatency(m *message.Message) {
	if m.Timestamp == 0 {
		return
	}
	now := time.Now()
	last := h.lastSample.Load()
	if now.UnixNano()-last < int64(100*time.Millisecond) || !h.lastSample.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	h.cfg.ObserveLatency(now.Sub(m.Time()))
}

// Stats returns a snapshot of the hub's counters.
func (h *Hub) Stats() Stats {
	s := h.stats.snapshot()
	s.ByShape = make(map[string]int64, message.NumShapes)
	for i := range h.shapes {
		s.ByShape[message.Shape(i).String()] = h.shapes[i].Load()
	}
	return s
}

// AddClient registers a client for conn and returns it. From now on the
// client's writer is the only one writing to conn. conn may be nil: the
// client then receives from this moment on, but its frames wait in its
// queue until Attach gives it the connection. That lets the server register
// a client before it answers the handshake, so that no record published
// after the client saw the handshake's answer is missed. Once Shutdown has
// been called, the client is closed with 1001 at once.
func (h *Hub) AddClient(conn Conn, o ClientOptions) *Client {
	sub := o.Sub
	tr := o.Transport
	if sub.View != nil {
		h.viewed.Add(1) // before the shape count: see Wants
	}
	if sub.MaxRate > 0 {
		h.rated.Add(1)
	}
	if tr == nil {
		tr = WebSocket{}
	}
	c := &Client{
		hub:      h,
		id:       h.nextID.Add(1),
		shape:    sub.Shape,
		sub:      h.compile(sub),
		tr:       tr,
		onClosed: o.OnClosed,
		added:    time.Now().UnixNano(),
		parked:   o.Park,
	}
	if conn != nil {
		h.limitConn(conn)
		c.setConn(conn)
	}
	c.lastRead.Store(c.added)
	h.liveMu.Lock()
	if h.live == 0 {
		h.idle = make(chan struct{})
	}
	h.live++
	h.liveMu.Unlock()
	h.stats.accepted.Add(1)
	h.stats.clients.Add(1)
	h.shapes[c.shape].Add(1)
	// After the shape count: a Wants snapshot numbered after this saw the
	// count, so the client may take that Publish (see Wants).
	c.from = h.wantSeq.Load()

	if g := c.sub.rate(); g != nil {
		// In its rate group before it can be found in its shard (and so
		// closed, and removed), and under no other lock, which a group's
		// hand-over must never hold up.
		g.add(c)
	}
	s := h.shardOf(c)
	h.announceMu.RLock()
	s.mu.Lock()
	s.members[c] = struct{}{}
	switch c.sub.route() {
	case routeAll:
		c.pos = len(s.all)
		s.all = append(s.all, c)
	case routeGlob:
		c.pos = len(s.globs)
		s.globs = append(s.globs, c)
	case routeView:
		c.pos = len(s.viewed)
		s.viewed = append(s.viewed, c)
	case routeRated:
		// In its rate group, above.
	default:
		for _, k := range c.sub.exact {
			s.exact[k] = append(s.exact[k], c)
		}
	}
	s.mu.Unlock()
	if m := h.standing; m != nil {
		c.announce(m)
	}
	h.announceMu.RUnlock()
	// Checked after the client is in its shard: either Shutdown's
	// snapshot, taken after stopping was set, finds it, or this sees
	// stopping.
	if h.stopping.Load() {
		c.Close(wsframe.CloseGoingAway, wsframe.ReasonGoingAway, ReasonShutdown)
	}
	return c
}

// clock returns the monotonic time since New in ns, always > 0: the
// clock of the rate bounds (latest.go).
func (h *Hub) clock() int64 { return int64(time.Since(h.start)) + 1 }

func (h *Hub) shardOf(c *Client) *shard { return &h.shards[c.id%uint64(len(h.shards))] }

// remove takes c out of the routing index. It is called once per client,
// from teardown, never with a shard lock held.
func (h *Hub) remove(c *Client) {
	s := h.shardOf(c)
	s.mu.Lock()
	delete(s.members, c)
	switch c.sub.route() {
	case routeAll:
		removeAt(&s.all, c)
	case routeGlob:
		removeAt(&s.globs, c)
	case routeView:
		removeAt(&s.viewed, c)
	case routeRated:
		// Out of its rate group below, with no shard lock held.
	default:
		for _, k := range c.sub.exact {
			unindex(s.exact, k, c)
		}
	}
	s.mu.Unlock()
	h.shapes[c.shape].Add(-1)
	h.stats.clients.Add(-1)
	if g := c.sub.rate(); g != nil {
		g.remove(c)
		h.releaseRate(g)
		h.rated.Add(-1)
	}
	if v := c.sub.view(); v != nil {
		h.views.release(v)
		h.viewed.Add(-1)
	}
}

// unindex removes x from m[key], and key from m once its list is empty.
func unindex[T comparable](m map[string][]T, key string, x T) {
	l := m[key]
	for i, y := range l {
		if y == x {
			var zero T
			l[i] = l[len(l)-1]
			l[len(l)-1] = zero
			l = l[:len(l)-1]
			break
		}
	}
	if len(l) == 0 {
		delete(m, key)
	} else {
		m[key] = l
	}
}

// removeAt swap-removes c from *l using c.pos, keeping positions right.
func removeAt(l *[]*Client, c *Client) {
	s := *l
	i := c.pos
	last := len(s) - 1
	s[i] = s[last]
	s[i].pos = i
	s[last] = nil
	*l = s[:last]
}

// Publish routes msgs, in order, to every client they match. It never
// blocks on a client: frames are appended to queues and written by each
// client's own writer. Publish must be called from one goroutine at a time
// for clients to see messages in publish order.
func (h *Hub) Publish(msgs []*message.Message) {
	if len(msgs) == 0 {
		return
	}
	h.stats.published.Add(uint64(len(msgs)))
	h.countOversized(msgs)
	seq := h.wantSeq.Load()
	if seq == h.pubSeq {
		// No Wants since the last Publish: the frames were built without
		// a snapshot, for every client registered now.
		seq = h.wantSeq.Add(1)
	}
	h.pubSeq = seq
	h.lastPub.Store(seq)
	// A long batch (a record of many rows, or a large fetch) is copied
	// once, and clients that take all of it (or all of a long run of one
	// key) share the copy as their backlog (Client.enqueue).
	share := len(msgs) > maxBatch
	var runs []keyRun
	if share {
		msgs = slices.Clone(msgs)
		runs = longRuns(msgs)
	}
	var enqueued uint64
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for _, c := range s.all {
			if c.from < seq {
				enqueued += c.enqueue(msgs, nil, seq, share)
			}
		}
		if len(s.exact) > 0 {
			enqueued += s.enqueueExact(msgs, runs, seq)
		}
		for _, c := range s.globs {
			if c.from < seq {
				enqueued += c.enqueue(msgs, c.sub, seq, share)
			}
		}
		s.mu.RUnlock()
	}
	var viewedGroups []*rateGroup
	if h.rated.Load() > 0 {
		viewedGroups = h.publishRated(msgs, seq)
		defer h.doneRated()
	}
	if h.viewed.Load() > 0 {
		enqueued += h.publishViewed(msgs, seq, viewedGroups)
	}
	h.stats.enqueued.Add(enqueued)
}

// keyRun is msgs[from:to] of a Publish, more than maxBatch messages in a
// row with the same key.
type keyRun struct{ from, to int }

// longRuns returns the runs of more than maxBatch messages with the same
// non-nil key, in order.
func longRuns(msgs []*message.Message) []keyRun {
	var runs []keyRun
	for i := 0; i < len(msgs); {
		j := i + 1
		if msgs[i].Key == nil {
			i = j
			continue
		}
		for j < len(msgs) && bytes.Equal(msgs[j].Key, msgs[i].Key) {
			j++
		}
		if j-i > maxBatch {
			runs = append(runs, keyRun{i, j})
		}
		i = j
	}
	return runs
}

// enqueueExact queues msgs for the shard's exact-key clients, message by
// message, but a long run of one key (runs) as one shared piece. The
// shard's read lock must be held.
func (s *shard) enqueueExact(msgs []*message.Message, runs []keyRun, seq uint64) uint64 {
	var n uint64
	for i := 0; i < len(msgs); {
		if len(runs) > 0 && runs[0].from == i {
			r := runs[0]
			runs = runs[1:]
			for _, c := range s.exact[string(msgs[i].Key)] {
				if c.from < seq {
					n += c.enqueue(msgs[r.from:r.to:r.to], nil, seq, true)
				}
			}
			i = r.to
			continue
		}
		m := msgs[i]
		i++
		if m.Notice() {
			n += s.enqueueNotice(m, seq)
			continue
		}
		if m.Key == nil {
			continue
		}
		for _, c := range s.exact[string(m.Key)] {
			if c.from < seq {
				n += c.enqueueOne(m, seq)
			}
		}
	}
	return n
}

// enqueueNotice queues a notice for every exact-key client of the shard
// (notices have no key: they go to every client, see Client.takes). The
// shard's read lock must be held.
func (s *shard) enqueueNotice(m *message.Message, seq uint64) uint64 {
	var n uint64
	for c := range s.members {
		if c.sub.route() == routeExact && c.from < seq {
			n += c.enqueueOne(m, seq)
		}
	}
	return n
}

// countOversized counts, and logs at most every 10 s, the frames that are
// larger than a client's whole queue and so can never be delivered; clients
// skip them.
func (h *Hub) countOversized(msgs []*message.Message) {
	for _, m := range msgs {
		for sh, f := range m.Frames {
			if len(f) <= h.cfg.MaxQueueBytes || h.shapes[sh].Load() == 0 {
				continue // fits, or built for nobody (the history keeps frames nobody receives now)
			}
			h.stats.oversized.Add(1)
			now := time.Now().UnixNano()
			if last := h.lastOversizedLog.Load(); now-last > int64(10*time.Second) && h.lastOversizedLog.CompareAndSwap(last, now) {
				h.log.Warn("record larger than a client's queue bound skipped (raise MAX_QUEUE_BYTES to deliver it)",
					"partition", m.Partition, "offset", m.Offset, "shape", message.Shape(sh).String(),
					"frame_bytes", len(f), "max_queue_bytes", h.cfg.MaxQueueBytes, "skipped_so_far", h.stats.oversized.Load())
			}
		}
	}
}

// clients returns a snapshot of every client.
func (h *Hub) clients() []*Client {
	var out []*Client
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for c := range s.members {
			out = append(out, c)
		}
		s.mu.RUnlock()
	}
	return out
}

// Run runs the writer pool and pings clients, dropping dead ones, until
// ctx is done. It returns nil. Without Run, every write is made by a
// goroutine of the client's own.
func (h *Hub) Run(ctx context.Context) error {
	poolDone := make(chan struct{})
	go func() {
		defer close(poolDone)
		h.pool.run(ctx)
	}()
	defer func() { <-poolDone }()
	if h.cfg.PingInterval < 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(h.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			h.pingAll(now)
		}
	}
}

func (h *Hub) pingAll(now time.Time) {
	deadline := now.Add(-2 * h.cfg.PingInterval).UnixNano()
	for _, c := range h.clients() {
		if c.tr.PeerAnswers() && c.lastRead.Load() < deadline {
			c.abort(ReasonPingTimeout)
			continue
		}
		c.sendKeepalive()
	}
}

// Shutdown closes every client with 1001 "going away" after what is
// already queued for it, and waits until all are gone or ctx is done; then
// it drops the rest. Clients added from the moment Shutdown is called (a
// handshake in flight) are closed the same way, so it may run alongside
// the HTTP server's own shutdown. It returns ctx's error if it had to drop
// clients.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.stopping.Store(true)
	for _, c := range h.clients() {
		c.Close(wsframe.CloseGoingAway, wsframe.ReasonGoingAway, ReasonShutdown)
	}
	if h.waitGone(ctx) {
		return nil
	}
	for _, c := range h.clients() {
		c.abort(ReasonShutdown)
	}
	h.waitGone(context.Background())
	return errors.Join(errors.New("hub: clients dropped at shutdown"), ctx.Err())
}

// waitGone waits until no client is left, or ctx is done; it reports
// whether none is left.
func (h *Hub) waitGone(ctx context.Context) bool {
	for {
		h.liveMu.Lock()
		n, idle := h.live, h.idle
		h.liveMu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return false
		}
	}
}

// gone counts a client torn down.
func (h *Hub) gone() {
	h.liveMu.Lock()
	h.live--
	if h.live == 0 {
		close(h.idle)
	}
	h.liveMu.Unlock()
}

// compile returns the routing form of s: the hub's shared one for clients
// that take everything.
func (h *Hub) compile(s Subscription) *compiled {
	c := compile(s)
	if s.View != nil {
		c.ext = &h.views.acquire(s.View).ext
	}
	if s.MaxRate > 0 {
		c.ext = &h.acquireRate(&c, s.MaxRate).ext
		return &c
	}
	if c.route() == routeAll {
		return &h.all
	}
	return &c
}

// deflatedFrame returns m's frame of shape s for a permessage-deflate
// client: compressed once, by whichever writer needs it first, then shared.
func (h *Hub) deflatedFrame(m *message.Message, s message.Shape) []byte {
	out, built := m.Deflated(s, h.deflate)
	if f := m.Frames[s]; built && len(out) < len(f) {
		h.stats.deflated.Add(1)
		h.stats.deflateSaved.Add(uint64(len(f) - len(out)))
	}
	return out
}

// deflate returns f compressed for permessage-deflate, or f itself when it
// is below the threshold, does not shrink, or no compressor can be made.
func (h *Hub) deflate(f []byte) []byte {
	if len(f) < h.cfg.DeflateThreshold {
		return f
	}
	d, _ := h.deflaters.Get().(*wsframe.Deflater)
	if d == nil {
		var err error
		if d, err = wsframe.NewDeflater(h.cfg.DeflateLevel); err != nil {
			return f
		}
	}
	defer h.deflaters.Put(d)
	if z := d.Deflate(f); z != nil {
		return z
	}
	return f
}
