// Package history keeps the recent messages of every partition in memory
// and serves the older ones from Kafka, so that a client can start from a
// position (a wsdest.Start: a cursor, the earliest record, a time, the last
// N records, a snapshot) and be handed over to the live stream with no gap
// and no duplicate.
//
// It knows nothing of HTTP. The publisher (one goroutine) hands every
// fetched batch to Tap.Publish, which, under the tap's one lock, stamps
// each message with its cursor (the publish position), appends the new
// messages to the Store (built to be delivered later in any shape,
// encode.EncodeKept) and its keys' latest to the snapshot table, and calls
// Hub.Publish. The Resumer fills a hub client added with
// hub.ClientOptions.Park from the Store and, for what the Store does not
// hold, from the Reader, the one shared Kafka catch-up reader, then joins
// it to the live stream. A snapshot (snapshot.go) is a start position
// like the others: the table's latest message of every key and the
// published position, taken together between two batches (one such
// point serves the snapshots of the next snapshotReuse, which share its
// frames), then the catch-up from that position. Seed (seed.go) fills
// the table from Kafka at start-up.
//
// # The invariant
//
// A client's position in a partition moves only over offsets it was sent
// (or that its subscription does not take, or that hold no record), or
// over a range Kafka reports it no longer holds (its log start is past
// the position), and such a range is announced with a gap notice first.
// One function enforces it, job.advance: every source says what it knows
// as spans (the Store: every message of a partition published in
// [From, To), Store.Read; Kafka: every record it holds in [From, Next), a
// Reader Chunk; a gap: [From, To) below Kafka's listed log start), and
// advance refuses a span that starts past the position, a message outside
// its span or out of order, or a gap Kafka still holds part of. Any such
// hole fails the catch-up closed (Resume returns ErrCatchUp, the client is
// closed with 1011 and resumes from its cursor), counted as a hole: it is
// a bug, never skipped. What the Store covers of a partition is known even
// after it evicted everything of it (Store.Range). Only Kafka's offsets
// say what a range holds: a fetch that brings nothing is retried, and
// after fetchAttempts × fetchTimeout the read fails, never advances.
//
// # The hand-over
//
// A catch-up is a loop of steps, each of which moves the position over
// one source's span or waits:
//
//   - a partition behind what was published that the Store does not cover
//     at the position is read from Kafka, up to where the Store starts
//     holding it (after a gap notice, if Kafka no longer holds the
//     position);
//   - otherwise, while the Store has many messages after the position, a
//     chunk of them is delivered (paced by the client's backlog,
//     hub.Client.WaitBacklog: no polling);
//   - with little left, the rest is taken and the client joined in one
//     step under the tap's lock (Tap.join), that is between two batches:
//     if the client then has exactly what was published (job.compare), it
//     gets every later batch live (hub.Client.Join); if a batch came
//     between, the next step takes it;
//   - a client ahead of what was published (its cursor came from a
//     replica further on, or, in consumer-group mode, from the replica
//     that owns a partition), or with records of a partition the
//     publisher has published nothing of yet, waits for the next batch,
//     without holding a concurrency slot, and fails closed once it has
//     waited ResumerConfig.AheadWait in all (job.waitAhead): the
//     publisher may never get there.
//
// A cursor past Kafka's end offset of a partition (cursors are not
// authenticated) is refused at the start (job.checkEnd): no publisher
// would ever reach it.
//
// So a client is either parked (it gets only what its catch-up pushes)
// or live (it gets what is published), never both, and it turns live only
// at a batch boundary where its position equals the publish position: no
// message can be missed or delivered twice at the hand-over, and nothing
// is held, filtered or re-sorted. Until a client's position is the
// publish position just after a stored message (job.aligned), the
// messages it gets are re-framed with its own cursor; from then on it
// shares the stored frames, and once live the published ones.
//
// # A jump forward
//
// The live consumer's offset in a partition may jump forward: retention
// deleted records before it read them (it goes on from the log start), a
// consumer group's partition came back from another replica's later
// commit, or the offsets skipped hold no record (transaction markers).
// The Store never held what was skipped: its coverage of the partition
// restarts at the first message past the jump (Store.Append), so a
// catch-up inside the jump reads it from Kafka, which gives the records
// it holds and a gap notice for what it deleted. Live clients cross the
// jump with the publisher: for a batch with a jump, the tap lists Kafka's
// log starts afresh (before it takes its lock) and publishes a gap notice
// to every envelope and SSE client, before the record, for what of the
// skipped range Kafka no longer holds.
//
// A topic deleted and created again under the same name is recognised by
// its identity (Kafka's topic id), which the tap asks for, before it
// takes its lock, when a record does not follow what it published: its
// offset goes backwards, its partition is new to the position, or the
// partition's position was only seeded from a listing (at the start, and
// after a recreation for every partition) and no record confirmed it yet,
// so that a topic recreated again within moments is told apart even where
// its first record is at the seeded offset. A new identity makes the tap
// reset the Store and its position and publish a reset notice before the
// new topic's first record to every envelope and SSE client; a catch-up
// that finds the identity changed (the tap's, the Store's Epoch, or
// Kafka's after a read) fails closed, and the client resuming with its
// old cursor gets the reset notice.
//
// # Known limits
//
// Records a consumer group moved past while Kafka still holds them are
// crossed by live clients with no notice (the tap cannot tell them from
// offsets that hold no record without reading them); a client resuming
// from a cursor inside them gets them from Kafka.
//
// Records carry no topic id: the tap asks Kafka for the identity after
// the records were fetched, so records of the old topic fetched just
// before a recreation and checked just after it would be taken for the
// new topic's. The simulation (sim_test.go) does not produce that window
// (its live consumer's fetch and the tap's check are back to back); it
// checks topics recreated at any moment otherwise, twice within moments
// included.
package history

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/message"
)

// DefaultMaxBytes is the default bound of a Store: 64 MiB of messages as
// the publisher keeps them (encode.EncodeKept: the plain WebSocket frame
// and the envelope's head; envelope and SSE frames instead of the head
// while such clients are connected).
const DefaultMaxBytes = 64 << 20

// entryOverhead is what one stored message costs beside the bytes of its
// frames and what it shares with the other rows of its record: the
// message struct, its ring entry and its slot in its partition's index.
const entryOverhead = int(unsafe.Sizeof(message.Message{}) + unsafe.Sizeof(entry{}) + unsafe.Sizeof(uint64(0)))

// StoreConfig bounds a Store. Zero values mean the documented defaults.
type StoreConfig struct {
	// MaxBytes bounds the bytes the stored messages hold (see size); the
	// oldest are dropped first, whatever their partition. Default
	// DefaultMaxBytes.
	MaxBytes int64
	// MaxAge, if positive, drops messages appended longer ago than this.
	// Default 0: no age bound.
	MaxAge time.Duration
}

// Store holds the most recently published messages of every partition, in
// publish order, bounded in bytes and optionally in age. Append is called
// by the publishing goroutine only; the other methods are safe for
// concurrent use with it and with each other.
type Store struct {
	maxBytes int64
	maxAge   time.Duration

	mu    sync.RWMutex
	ring  []entry // in publish order; ring[i] has seq first+i
	first uint64  // seq of ring[0]
	parts []part  // by partition
	bytes int64
	epoch uint64 // counts Resets

	evicted atomic.Uint64
}

type entry struct {
	m    *message.Message
	at   int64 // unix ns appended
	size int32
}

// part is one partition's view of the ring.
type part struct {
	// seqs are the ring seqs of the partition's messages, oldest first;
	// seqs[head:] are live.
	seqs []uint64
	head int
	// The store holds every message of the partition published at
	// offsets [from, end), and knows it even when that range is empty
	// (everything of the partition was evicted); from is -1 while none
	// was appended.
	from, end int64
}

// NewStore returns an empty store.
func NewStore(cfg StoreConfig) *Store {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	return &Store{maxBytes: cfg.MaxBytes, maxAge: cfg.MaxAge}
}

// size is what m costs the store: entryOverhead and its frames, and, on
// the first row of a record only, what the rows of a record share: the
// key and the Origin (its cursor text, envelope head and position). The
// rows also share one allocation for their messages and one per shape for
// their frames, of which each row is counted its part.
func size(m *message.Message) int32 {
	n := entryOverhead
	for _, f := range m.Frames {
		n += len(f)
	}
	if m.Row == 0 {
		n += len(m.Key)
		if o := m.Origin; o != nil {
			n += int(unsafe.Sizeof(*o)) + len(o.Cursor) + len(o.Head)
			if o.Before != nil {
				n += int(unsafe.Sizeof(*o.Before)) + 8*len(o.Before.Offsets)
			}
		}
	}
	return int32(n)
}

// Append adds msgs, in order, evicting the oldest messages to stay within
// the bounds. Call it from the publishing goroutine, before the messages
// are published.
func (s *Store) Append(msgs []*message.Message) {
	if len(msgs) == 0 {
		return
	}
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Grown once for the batch (and each partition's index once for each
	// run of its messages, such as the rows of a record), not by copies.
	s.ring = slices.Grow(s.ring, len(msgs))
	for i, m := range msgs {
		p := int(m.Partition)
		for p >= len(s.parts) {
			s.parts = append(s.parts, part{from: -1})
		}
		pt := &s.parts[p]
		if pt.from < 0 || m.Offset > pt.end {
			// The first message of p, or the publisher's offset jumped
			// forward (retention overtook the consumer, a consumer group
			// moved it on, or offsets that hold no record, such as
			// transaction markers): what it skipped was never held.
			pt.from = m.Offset
		}
		pt.end = m.Offset + 1
		if i == 0 || msgs[i-1].Partition != m.Partition {
			run := 1
			for run < len(msgs)-i && msgs[i+run].Partition == m.Partition {
				run++
			}
			pt.seqs = slices.Grow(pt.seqs, run)
		}
		e := entry{m: m, at: now, size: size(m)}
		pt.seqs = append(pt.seqs, s.first+uint64(len(s.ring)))
		s.ring = append(s.ring, e)
		s.bytes += int64(e.size)
	}
	s.evictLocked(now)
}

// evictLocked drops the oldest messages while over the byte bound or older
// than the age bound. The rows of one record go together, so that a
// partition's coverage (from) always starts at a whole record.
func (s *Store) evictLocked(now int64) {
	minAt := int64(-1 << 63)
	if s.maxAge > 0 {
		minAt = now - int64(s.maxAge)
	}
	for len(s.ring) > 0 && (s.bytes > s.maxBytes || s.ring[0].at < minAt) {
		m := s.ring[0].m
		for len(s.ring) > 0 && s.ring[0].m.Partition == m.Partition && s.ring[0].m.Offset == m.Offset {
			s.dropFirstLocked()
		}
		pt := &s.parts[m.Partition]
		pt.from = max(pt.from, m.Offset+1) // from may be past it (Append)
	}
	// Move the ring to an array twice its length once it fills less than
	// a quarter of the capacity left in its array (dropping from the front
	// leaves the array's start unused until the next growth), so that a
	// ring that shrank does not keep its largest array.
	if cap(s.ring) > 1024 && len(s.ring) < cap(s.ring)/4 {
		s.ring = append(make([]entry, 0, 2*len(s.ring)), s.ring...)
	}
}

func (s *Store) dropFirstLocked() {
	e := s.ring[0]
	s.ring[0] = entry{}
	s.ring = s.ring[1:]
	s.first++
	s.bytes -= int64(e.size)
	s.evicted.Add(1)
	pt := &s.parts[e.m.Partition]
	pt.head++
	if pt.head > 64 && pt.head > len(pt.seqs)/2 {
		pt.seqs = append(pt.seqs[:0:0], pt.seqs[pt.head:]...)
		pt.head = 0
	}
}

// Reset drops every message (the topic was recreated: its offsets start
// again).
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.ring)
	s.ring, s.parts, s.bytes = nil, nil, 0
	s.epoch++
}

// Epoch counts the Resets: what a store gave before a Reset (Batch.Epoch)
// belongs to a topic since recreated.
func (s *Store) Epoch() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.epoch
}

// Coverage returns, for partition p, the offset from which every
// published message is held, also when all of them were evicted since;
// -1 when none of p was ever appended.
func (s *Store) Coverage(p int32) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.coverageLocked(p)
}

func (s *Store) coverageLocked(p int32) int64 {
	if p < 0 || int(p) >= len(s.parts) {
		return -1
	}
	return s.parts[p].from
}

// Range returns the offsets [from, end) of partition p of which the store
// holds every published message (see Coverage); from is -1 when none of
// p was ever appended.
func (s *Store) Range(p int32) (from, end int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p < 0 || int(p) >= len(s.parts) {
		return -1, -1
	}
	return s.parts[p].from, s.parts[p].end
}

// Batch is what a Store gives a client at one moment (Read).
type Batch struct {
	// Msgs are held messages, in publish order.
	Msgs []*message.Message
	// Spans say what Msgs are: for each span, Msgs hold every message
	// of its partition published at offsets [From, To) from the
	// client's position on.
	Spans []Span
	// Epoch is the store's Epoch when it was read.
	Epoch uint64
}

// Span is a range [From, To) of partition P's offsets.
type Span struct {
	P        int32
	From, To int64
}

// Read returns the held messages after pos (wsdest.Cursor.Delivered) of
// every partition whose position the store covers and that it holds
// something after, in publish order, about max of them (the rows of a
// record are never split), with a span for each such partition. It
// returns nothing of a partition whose position is unknown, or before
// the store's coverage (those records must come from Kafka).
func (s *Store) Read(pos *wsdest.Cursor, max int) Batch {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := Batch{Epoch: s.epoch}
	end := s.first + uint64(len(s.ring))
	start := end
	for p := range s.parts {
		pt := &s.parts[p]
		next, _ := pos.Next(int32(p))
		if next < 0 || pt.from < 0 || pt.from > next || pt.end <= next {
			continue
		}
		b.Spans = append(b.Spans, Span{P: int32(p), From: next, To: pt.end})
		live := pt.seqs[pt.head:]
		// The first message of p at or after next, by binary search.
		i, _ := slices.BinarySearchFunc(live, next, func(seq uint64, o int64) int {
			return cmp.Compare(s.ring[seq-s.first].m.Offset, o)
		})
		if i < len(live) {
			start = min(start, live[i])
		}
	}
	if len(b.Spans) == 0 {
		return b
	}
	covered := func(p int32) *Span {
		for i := range b.Spans {
			if b.Spans[i].P == p {
				return &b.Spans[i]
			}
		}
		return nil
	}
	seq := start
	for ; seq < end; seq++ {
		m := s.ring[seq-s.first].m
		if len(b.Msgs) >= max && !(m.Row > 0 && b.Msgs[len(b.Msgs)-1].Partition == m.Partition && b.Msgs[len(b.Msgs)-1].Offset == m.Offset) {
			break
		}
		if covered(m.Partition) != nil && !pos.Delivered(m.Partition, m.Offset, m.Row) {
			b.Msgs = append(b.Msgs, m)
		}
	}
	if seq < end {
		// Cut short: a partition with messages left is given up to its
		// last message given.
		for i := range b.Spans {
			sp := &b.Spans[i]
			pt := &s.parts[sp.P]
			if pt.seqs[len(pt.seqs)-1] < seq {
				continue
			}
			sp.To = sp.From
			for j := len(b.Msgs) - 1; j >= 0; j-- {
				if b.Msgs[j].Partition == sp.P {
					sp.To = b.Msgs[j].Offset + 1
					break
				}
			}
		}
	}
	return b
}

// Last returns, for each partition, its newest held messages that keep
// accepts, at most n each, oldest first, from its coverage on (none held
// before it), with the coverage of every partition.
func (s *Store) Last(n int, keep func(m *message.Message) bool) (byPart [][]*message.Message, from []int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	byPart = make([][]*message.Message, len(s.parts))
	from = make([]int64, len(s.parts))
	for p := range s.parts {
		from[p] = s.coverageLocked(int32(p))
		pt := &s.parts[p]
		live := pt.seqs[pt.head:]
		var got []*message.Message
		for i := len(live) - 1; i >= 0 && len(got) < n; i-- {
			m := s.ring[live[i]-s.first].m
			if m.Offset < pt.from {
				break // held, but before a jump (Append): not contiguous
			}
			if keep(m) {
				got = append(got, m)
			}
		}
		for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
			got[i], got[j] = got[j], got[i]
		}
		byPart[p] = got
	}
	return byPart, from
}

// StoreStats is a snapshot of a Store's size.
type StoreStats struct {
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"`
	MaxBytes int64  `json:"max_bytes"`
	Evicted  uint64 `json:"evicted"`
}

// Stats returns the store's size.
func (s *Store) Stats() StoreStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return StoreStats{Messages: len(s.ring), Bytes: s.bytes, MaxBytes: s.maxBytes, Evicted: s.evicted.Load()}
}
