package history

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/ratelog"
	"github.com/wsdest/wsdest/internal/snapshot"
)

// identityTimeout bounds the metadata request the publisher makes when a
// partition's offsets go backwards (to tell a recreated topic from a
// rewind).
const identityTimeout = 2 * time.Second

// TapConfig configures a Tap.
type TapConfig struct {
	// Encoder builds the messages.
	Encoder *encode.Encoder
	// Store receives every new message; nil keeps no history.
	Store *Store
	// Table receives the latest message of each key (and each
	// tombstone), under the tap's lock as it publishes; nil keeps no
	// table (SNAPSHOT=false).
	Table *snapshot.Table
	// Reader tells the topic's identity and lists offsets.
	Reader *Reader
	// Since is when this process started consuming (at or before the
	// consumer's own start): partitions not yet seen are read from the
	// records stamped at or after it.
	Since time.Time
	// Logger receives the tap's log lines. Default slog.Default().
	Logger *slog.Logger
}

// Tap is the publisher's side of the history: it encodes each published
// batch with the publish position (so that every message carries its
// cursor), appends the new messages to the Store, makes each key's last
// one its latest in the Table, and hands them to the hub, all under one
// lock, so that a catch-up can join the live stream
// between two batches (join); what a batch asks Kafka (ask) is asked
// before the lock is taken. Publish is called by the publishing goroutine
// only; the other methods are safe for concurrent use.
type Tap struct {
	cfg TapConfig
	log *slog.Logger

	// mu is held by Publish for a whole batch, by Run for seeding the
	// positions of partitions not yet seen, and by join. It guards pos,
	// seeded and next.
	mu  sync.Mutex
	pos wsdest.Cursor
	// seeded marks, by partition, a position taken from a listing
	// (seedLocked) that no published record has confirmed yet: the
	// first record there may be a topic recreated since (see
	// encodeLocked).
	seeded []bool
	// next, when not nil, is closed when the batch being published or
	// the next one is published (Tap.next).
	next chan struct{}

	published atomic.Pointer[wsdest.Cursor] // pos after the last batch
	ready     chan struct{}                 // closed once the identity is known

	repeats atomic.Uint64 // records dropped as already published
	gaps    atomic.Uint64 // gap notices published (jumpedLocked)

	// events is what the batch being published did that is worth a log
	// line; written under mu, logged by Publish after it releases mu (no
	// I/O under the lock a joining catch-up takes), at most once every
	// 10 s per kind (lines).
	events tapEvents
	lines  *ratelog.Limiter
}

// tapEvents is what one batch did that the log tells of.
type tapEvents struct {
	repeats   int         // records dropped as already published
	gap       *gapNoticed // the last gap notice of the batch
	recreated bool        // the topic was recreated
}

type gapNoticed struct {
	partition int32
	from, to  int64
}

// NewTap returns a tap; Run must run beside the publisher for cursors to
// carry the topic's id.
func NewTap(cfg TapConfig) *Tap {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Tap{cfg: cfg, log: cfg.Logger, ready: make(chan struct{}), lines: ratelog.New(10*time.Second, 1)}
	t.pos.Since = cfg.Since
	t.pos.Topic = wsdest.NewTopicIdentity(cfg.Reader.cfg.Topic, [16]byte{})
	p := t.pos.Clone()
	t.published.Store(&p)
	return t
}

// Ready reports whether the topic's identity is known, so that cursors
// carry it.
func (t *Tap) Ready() bool {
	select {
	case <-t.ready:
		return true
	default:
		return false
	}
}

// Identity returns the topic's identity as the cursors carry it.
func (t *Tap) Identity() wsdest.TopicIdentity { return t.published.Load().Topic }

// Published returns the position after the last published batch; do not
// modify it.
func (t *Tap) Published() *wsdest.Cursor { return t.published.Load() }

// Run learns the topic's identity (retrying every second until the broker
// answers) and the start positions of the partitions no record was seen
// of yet, then returns nil; it returns early when ctx is done.
func (t *Tap) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		id, _, err := t.cfg.Reader.Identity(ctx)
		if err == nil {
			offs, lerr := t.cfg.Reader.OffsetsAfter(ctx, t.cfg.Since)
			if lerr == nil {
				t.mu.Lock()
				if t.pos.Topic.NameHash == id.NameHash && t.pos.Topic.ID == ([8]byte{}) {
					t.pos.Topic = id
				}
				t.seedLocked(offs)
				t.publishedLocked()
				t.mu.Unlock()
				close(t.ready)
				return nil
			}
			err = lerr
		}
		t.log.Debug("history: topic identity not known yet", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// waitReady waits until the topic's identity is known or ctx is done.
func (t *Tap) waitReady(ctx context.Context) error {
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// seedLocked sets the positions of partitions not seen yet, and marks
// them seeded. t.mu must be held.
func (t *Tap) seedLocked(offs map[int32]int64) {
	for p, o := range offs {
		if n, _ := t.pos.Next(p); n < 0 && o >= 0 {
			for int(p) >= len(t.pos.Offsets) {
				t.pos.Offsets = append(t.pos.Offsets, wsdest.Unknown)
			}
			t.pos.Offsets[p] = o
			for int(p) >= len(t.seeded) {
				t.seeded = append(t.seeded, false)
			}
			t.seeded[p] = true
		}
	}
}

// seededLocked reports whether p's position is seeded (seedLocked) and
// no record of p was published since. t.mu must be held.
func (t *Tap) seededLocked(p int32) bool {
	return p >= 0 && int(p) < len(t.seeded) && t.seeded[p]
}

// Publish encodes recs into dst (see encodeLocked), with the shapes want
// returns, and hands the messages to publish (Hub.Publish), holding the
// tap's lock throughout (but for what it asks Kafka first, ask): a
// catch-up joins the live stream between two batches (join). Call it from
// the publishing goroutine only.
func (t *Tap) Publish(dst []*message.Message, recs []*wsdest.Record, want func() [message.NumShapes]bool, publish func([]*message.Message)) []*message.Message {
	ready := t.Ready()
	kafka := t.ask(recs, ready)
	t.mu.Lock()
	dst = t.encodeLocked(dst, recs, want(), ready, kafka)
	// The published position moves before the hub hands the batch to
	// clients: a client that got a message of it (a reset notice, a new
	// topic's record) and comes back at once is placed by a position, and
	// an identity, that include it.
	t.publishedLocked()
	publish(dst)
	ev := t.events
	t.events = tapEvents{}
	t.mu.Unlock()
	t.logEvents(ev)
	if t.cfg.Table != nil {
		t.cfg.Table.Log()
	}
	return dst
}

// logEvents writes what a batch did to the log, outside the tap's lock,
// each kind at most once every 10 s (with how many were left out).
func (t *Tap) logEvents(ev tapEvents) {
	if ev.recreated {
		if _, ok := t.lines.Allow("recreated"); ok {
			t.log.Warn("history: the topic was recreated; positions and history start again", "topic", t.cfg.Reader.cfg.Topic)
		}
	}
	if g := ev.gap; g != nil {
		if _, ok := t.lines.Allow("gap"); ok {
			t.log.Warn("history: records deleted before the live consumer read them; clients get a gap notice", "partition", g.partition, "from", g.from, "to", g.to, "so_far", t.gaps.Load())
		}
	}
	if ev.repeats > 0 {
		if _, ok := t.lines.Allow("repeats"); ok {
			t.log.Info("history: records read again (a rebalance or a rewind) not published twice", "records", ev.repeats, "so_far", t.repeats.Load())
		}
	}
}

// publishedLocked makes pos the published position and wakes whoever
// waits for a batch. t.mu must be held.
func (t *Tap) publishedLocked() {
	p := t.pos.Clone()
	t.published.Store(&p)
	if t.next != nil {
		close(t.next)
		t.next = nil
	}
}

// nextBatch returns a channel closed once a batch is published after the
// call.
func (t *Tap) nextBatch() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next == nil {
		t.next = make(chan struct{})
	}
	return t.next
}

// join calls f with the published position, between two batches: what
// f does (hub.Client.Join) takes effect from the next batch on. f must be
// quick and must not block.
func (t *Tap) join(f func(pub *wsdest.Cursor) bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return f(&t.pos)
}

// encodeLocked appends to dst the messages of recs, each with its cursor,
// and stores them: with a Store or a Table, they are encoded for keeping
// (Encoder.EncodeKept), so that the Resumer can deliver them in any shape;
// the Table gets each key's latest (latestLocked).
// Records at offsets already published (read again after a consumer-group
// rebalance, or after the consumer rewound) are dropped: every client has
// them, or is past them. A topic recreated under the same name (a new
// topic id, asked of Kafka when offsets go backwards, a partition is new
// to the position, or its position is seeded: see suspectLocked; kafka
// is what ask learnt of it) resets the position and the store, and its
// first record is preceded by a reset notice for envelope and SSE
// clients. A record past its partition's position (the consumer's offset
// jumped forward) is preceded by a gap notice for what Kafka deleted of
// the skipped range (jumpedLocked). t.mu must be held.
func (t *Tap) encodeLocked(dst []*message.Message, recs []*wsdest.Record, want [message.NumShapes]bool, ready bool, kafka identityCheck) []*message.Message {
	checked := false
	store := len(dst) // dst[store:] goes to the Store
	repeats := 0
	for _, rec := range recs {
		old := t.pos.Delivered(rec.Partition, rec.Offset, 0)
		if !checked && t.suspectLocked(rec, ready) {
			checked = true
			if t.recreatedLocked(kafka) {
				if t.cfg.Store != nil {
					t.cfg.Store.Reset()
				}
				if t.cfg.Table != nil {
					t.cfg.Table.Reset()
				}
				old = false
				dst = append(dst, encode.NoticeAll(encode.ResetNotice("topic_recreated")))
				store = len(dst) // what came before is the old topic's
			}
		}
		if old {
			repeats++
			continue
		}
		if next, _ := t.pos.Next(rec.Partition); next >= 0 && rec.Offset > next {
			if t.cfg.Store != nil {
				// The notice is no stored message.
				t.cfg.Store.Append(dst[store:])
			}
			dst = t.jumpedLocked(dst, rec, next, kafka.logStarts())
			store = len(dst)
		}
		if kafka.asked && t.seededLocked(rec.Partition) {
			t.seeded[rec.Partition] = false // confirmed by this batch's identity
		}
		n := len(dst)
		if t.cfg.Store != nil || t.cfg.Table != nil {
			dst = t.cfg.Encoder.EncodeKept(dst, rec, want, &t.pos)
			if rec.Key != nil && len(dst) > n {
				// The key is a slice of the fetch's buffer, which holds
				// every record of the fetch: a stored message must not
				// keep that alive.
				key := bytes.Clone(rec.Key)
				for _, m := range dst[n:] {
					m.Key = key
				}
			}
		} else {
			dst = t.cfg.Encoder.EncodeAt(dst, rec, want, &t.pos)
		}
		t.latestLocked(rec, dst[n:])
	}
	if t.cfg.Store != nil {
		t.cfg.Store.Append(dst[store:])
	}
	if repeats > 0 {
		t.repeats.Add(uint64(repeats))
		t.events.repeats += repeats
	}
	return dst
}

// latestLocked updates the table with rec, whose messages are msgs: a
// tombstone removes its key, another record makes its last message (its
// last Quix row, detached from the others: snapshot.Latest) the key's latest; a record without a key, or that gave
// no message, changes nothing. t.mu must be held.
func (t *Tap) latestLocked(rec *wsdest.Record, msgs []*message.Message) {
	switch {
	case t.cfg.Table == nil || rec.Key == nil:
	case rec.Value == nil:
		t.cfg.Table.Delete(rec.Key, rec.Partition, rec.Offset)
	case len(msgs) > 0:
		t.cfg.Table.Put(snapshot.Latest(msgs))
	}
}

// jumpedLocked handles rec, whose offset is past next, the position of
// its partition: the live consumer's offset jumped forward. The Store
// restarts its coverage at rec by itself (Store.Append); what of the
// skipped range Kafka no longer holds (its log start, starts, listed by
// ask, is past next) is announced to every envelope and SSE client with
// a gap notice appended to dst. The rest of the range (offsets that hold
// no record, such as transaction markers, or records a consumer group
// moved past) gets no notice. t.mu must be held.
func (t *Tap) jumpedLocked(dst []*message.Message, rec *wsdest.Record, next int64, starts map[int32]int64) []*message.Message {
	start, ok := starts[rec.Partition]
	if !ok || start <= next {
		return dst
	}
	to := min(start, rec.Offset)
	t.gaps.Add(1)
	t.events.gap = &gapNoticed{partition: rec.Partition, from: next, to: to}
	return append(dst, encode.NoticeAll(encode.GapNotice(rec.Partition, next, to)))
}

// jumpsLocked reports whether a record of recs may be past its
// partition's position (see jumpedLocked): each is compared with the
// record before it when that is of its partition, otherwise with the
// position, which is never past the partition's position when the
// record is encoded (a seeded one included: a topic recreated, and
// records of it deleted, since it was listed). t.mu must be held.
func (t *Tap) jumpsLocked(recs []*wsdest.Record) bool {
	for i, rec := range recs {
		next, _ := t.pos.Next(rec.Partition)
		if i > 0 && recs[i-1].Partition == rec.Partition {
			next = max(next, recs[i-1].Offset+1)
		}
		if next >= 0 && rec.Offset > next {
			return true
		}
	}
	return false
}

// suspectLocked reports whether rec may be of a topic recreated since
// the position was set: its offset goes backwards, its partition is new
// to the position (once the identity is known: ready), or the
// partition's position was only seeded from a listing (after a
// recreation, every one: the topic may have been recreated again since,
// and its first record be at the seeded offset). Only the topic's
// identity tells. t.mu must be held.
func (t *Tap) suspectLocked(rec *wsdest.Record, ready bool) bool {
	next, _ := t.pos.Next(rec.Partition)
	return next < 0 && ready || t.seededLocked(rec.Partition) || t.pos.Delivered(rec.Partition, rec.Offset, 0)
}

// identityCheck is what ask learnt of Kafka for a batch.
type identityCheck struct {
	// asked: a record of the batch was suspect, and Kafka was asked.
	asked bool
	// id is the topic's identity, when Kafka answered one other than the
	// tap's; zero otherwise.
	id wsdest.TopicIdentity
	// recreated are the new topic's start offsets, when id is set and
	// Kafka listed them.
	recreated map[int32]int64
	// starts are the partitions' log starts, listed when a record of the
	// batch may be past its partition's position (jumpsLocked).
	starts map[int32]int64
}

// logStarts returns the partitions' log starts, as listed after the
// identity for a recreated topic, or else for a jump; nil if not listed.
func (c identityCheck) logStarts() map[int32]int64 {
	if c.recreated != nil {
		return c.recreated
	}
	return c.starts
}

// ask asks Kafka for the topic's identity, and for a new one its start
// offsets, when a record of recs is suspect (suspectLocked), and for the
// log starts when one may be past its partition's position (jumpsLocked:
// a failed listing means no gap notice for that batch), without
// holding the tap's lock over the requests: publishing and joining
// catch-ups go on meanwhile. Only the publishing goroutine moves the
// position, and Run only before ready, so what ask saw still holds when
// encodeLocked takes the lock, but for partitions Run seeds meanwhile
// (recreatedLocked checks the identity again, and a seeded partition
// stays suspect until a batch that asked).
func (t *Tap) ask(recs []*wsdest.Record, ready bool) (c identityCheck) {
	t.mu.Lock()
	topic := t.pos.Topic
	suspect := slices.ContainsFunc(recs, func(rec *wsdest.Record) bool { return t.suspectLocked(rec, ready) })
	jumps := t.jumpsLocked(recs)
	t.mu.Unlock()
	if !suspect && !jumps {
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), identityTimeout)
	defer cancel()
	if jumps {
		// A fresh listing: a shared one may predate the deletion.
		c.starts, _ = t.cfg.Reader.StartOffsets(ctx, false)
	}
	if !suspect {
		return c
	}
	c.asked = true
	id, _, err := t.cfg.Reader.Identity(ctx)
	if err != nil || id == topic || id.ID == ([8]byte{}) {
		return c
	}
	c.id = id
	if starts, err := t.cfg.Reader.StartOffsets(ctx, false); err == nil {
		c.recreated = starts
	}
	return c
}

// recreatedLocked reports whether kafka says the topic was recreated and,
// if so, resets the position to the new topic's start. t.mu must be held.
func (t *Tap) recreatedLocked(kafka identityCheck) bool {
	if kafka.id.ID == ([8]byte{}) || kafka.id == t.pos.Topic {
		return false
	}
	t.events.recreated = true
	t.cfg.Reader.forget() // before a catch-up can see the new identity
	t.pos = wsdest.Cursor{Topic: kafka.id}
	clear(t.seeded)
	// The new topic is published from its start: so the position says,
	// also of partitions of which nothing is published yet.
	t.seedLocked(kafka.recreated)
	return true
}
