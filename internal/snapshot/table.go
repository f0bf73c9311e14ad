// Package snapshot keeps the latest message of every key the publisher
// has seen (the Table), so that a client that asks for a snapshot starts
// with the latest value of every key it subscribes to, and then goes on
// live from the position the snapshot was taken at.
//
// The Table holds the messages the history keeps (the same
// *message.Message, built by encode.EncodeKept: the plain frame and the
// envelope's head), so a key costs a map entry, a list entry, an entry of
// the base map views are built from and a pointer beyond what the
// history holds. A record of many Quix rows counts as its last row, a
// copy of its own (Latest). A record without a key is not in the table
// (nothing names it). A record with a null value (a Kafka tombstone)
// removes its key. At MaxKeys, the least recently updated key goes,
// counted (Stats) and logged (Log); while seeding, the oldest seeded
// record (Seed).
//
// A View's snapshot frames carry the snapshot point as their cursor; the
// clients of one view at one point share them (View.SharedFrame), up to
// a bound per view past which each client frames its own (Frame).
//
// Concurrency: the publisher updates the table (Put, Delete, Reset)
// under its own lock as it publishes, and a client's snapshot is
// captured under that same lock (Capture, O(1)), so that it matches one
// published position; its View is built from the capture outside that
// lock (ViewOf). Seeding (Seed, SeedDelete, Seeded) runs beside the
// publisher and never replaces what the publisher put (see Seed). The
// Table's own lock is held for O(1) map, list and heap work only (but
// once, at Seeded), never for I/O.
package snapshot

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/ratelog"
)

// DefaultMaxKeys is the default bound of the table (SNAPSHOT_MAX_KEYS).
const DefaultMaxKeys = 100_000

// Config configures a Table.
type Config struct {
	// MaxKeys bounds the keys held; past it the least recently updated
	// key is evicted. Default DefaultMaxKeys.
	MaxKeys int
	// Logger receives the eviction lines (Log). Default slog.Default().
	Logger *slog.Logger
}

// Table is the latest message per key. Its methods are safe for
// concurrent use.
type Table struct {
	cfg   Config
	log   *slog.Logger
	lines *ratelog.Limiter

	// mu guards everything below it but the atomics.
	mu   sync.Mutex
	keys map[string]*entry
	// list is a ring of the entries from the least recently updated
	// (list.next) to the most recently updated (list.prev).
	list entry
	// live counts the entries that hold a message (the others are
	// tombstone markers, kept only while seeding).
	live int
	// base and changes make the views (Capture, ViewOf): base is what
	// the table held after some change, immutable, and changes are the
	// changes since, in order, append-only (an element is never modified
	// once appended, so a Capture's prefix stays valid).
	base       *frozen
	changes    []change
	compacting bool // a goroutine folds changes into a new base (compact)
	// seeds holds the seeded entries while seeding, oldest record
	// first (they join list at Seeded).
	seeds seedHeap
	// floor is, while seeding, the highest offset of each partition that
	// the publisher's side evicted: seeding puts back no key at or below.
	floor map[int32]int64
	// seeding: tombstones leave a marker, so that seeding does not bring
	// back a key deleted since the record it reads.
	seeding  bool
	stale    bool // reset while seeding: Seed and SeedDelete are ignored
	unlogged int  // evictions not logged yet (Log)

	seeded chan struct{} // closed once seeding is done (or never started)

	// viewMu guards slot, the view of the last Capture asked for (never
	// taken with mu held, nor by the publisher).
	viewMu    sync.Mutex
	slot      *viewSlot
	evictions atomic.Uint64
	served    atomic.Uint64
}

// entry is one key's latest message, or a tombstone marker (msg nil).
type entry struct {
	key       string
	msg       *message.Message
	partition int32
	offset    int64
	// fromSeed: put by seeding, not yet replaced by the publisher.
	fromSeed bool
	// heapIdx is the entry's index in Table.seeds, -1 when in the list.
	heapIdx    int
	prev, next *entry
}

// New returns an empty table that is seeded (see StartSeeding).
func New(cfg Config) *Table {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Table{cfg: cfg, log: cfg.Logger, lines: ratelog.New(10*time.Second, 1),
		keys: make(map[string]*entry), base: &frozen{}, floor: make(map[int32]int64), seeded: make(chan struct{})}
	t.list.next, t.list.prev = &t.list, &t.list
	close(t.seeded)
	return t
}

// MaxKeys returns the table's bound.
func (t *Table) MaxKeys() int { return t.cfg.MaxKeys }

// keyOf returns the map key for a message's key: its bytes, shared, not
// copied (the key of a kept message is never modified, and replacing an
// entry replaces its map key too).
func keyOf(k []byte) string { return unsafe.String(unsafe.SliceData(k), len(k)) }

// Put makes m its key's latest message (the publisher's side). A message
// without a key is ignored.
func (t *Table) Put(m *message.Message) {
	if m.Key == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setLocked(m.Key, m, m.Partition, m.Offset)
}

// Delete removes key, deleted by a tombstone at offset of partition (the
// publisher's side). While seeding, a marker stays in its place.
func (t *Table) Delete(key []byte, partition int32, offset int64) {
	if key == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seeding {
		t.setLocked(bytes.Clone(key), nil, partition, offset)
		return
	}
	if e := t.keys[string(key)]; e != nil {
		t.removeLocked(e)
	}
}

// Reset empties the table (the topic was recreated: its keys' values are
// of another topic). While seeding, what seeding reads from then on is
// ignored: it reads the old topic's offsets (Seed).
func (t *Table) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stale = t.seeding
	clear(t.keys)
	t.list.next, t.list.prev = &t.list, &t.list
	t.seeds = nil
	clear(t.floor)
	t.live = 0
	t.base, t.changes = &frozen{}, nil
}

// setLocked puts (or, msg nil, marks deleted) key as the most recently
// updated, evicting the least recently updated key past the bound (the
// publisher's side; seeding uses seedLocked). t.mu must be held.
func (t *Table) setLocked(key []byte, msg *message.Message, partition int32, offset int64) {
	e := t.keys[keyOf(key)]
	if e == nil {
		e = &entry{heapIdx: -1}
		t.evictLocked()
	} else {
		t.detachLocked(e)
	}
	e.key, e.msg, e.partition, e.offset, e.fromSeed = keyOf(key), msg, partition, offset, false
	t.keys[e.key] = e
	t.linkLocked(e)
	if msg != nil {
		t.live++
	}
	t.changedLocked(e.key, msg)
}

// detachLocked takes e out of the list or the seeded heap, keeping it in
// the map. t.mu must be held.
func (t *Table) detachLocked(e *entry) {
	if e.heapIdx >= 0 {
		heap.Remove(&t.seeds, e.heapIdx)
	} else {
		t.unlinkLocked(e)
	}
	if e.msg != nil {
		t.live--
	}
}

// evictLocked makes room for one more key the publisher puts: a seeded
// entry goes first, the oldest by record time (every seeded record is
// older than what the publisher puts), then the least recently updated.
// While seeding, evicting what the publisher put (or a tombstone marker)
// raises its partition's floor, so that seeding never brings back an
// older record of that key (seedLocked). t.mu must be held.
func (t *Table) evictLocked() {
	for len(t.keys) >= t.cfg.MaxKeys {
		var e *entry
		switch {
		case len(t.seeds) > 0:
			e = t.seeds[0]
		case t.list.next != &t.list:
			e = t.list.next
			if t.seeding {
				t.raiseFloorLocked(e.partition, e.offset)
			}
		default:
			return
		}
		if e.msg != nil {
			t.countEvictedLocked()
		}
		t.removeLocked(e)
	}
}

func (t *Table) raiseFloorLocked(partition int32, offset int64) {
	if f, ok := t.floor[partition]; !ok || offset > f {
		t.floor[partition] = offset
	}
}

func (t *Table) countEvictedLocked() {
	t.evictions.Add(1)
	t.unlogged++
}

func (t *Table) removeLocked(e *entry) {
	t.detachLocked(e)
	delete(t.keys, e.key)
	t.changedLocked(e.key, nil)
}

func (t *Table) unlinkLocked(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (t *Table) linkLocked(e *entry) {
	e.prev, e.next = t.list.prev, &t.list
	t.list.prev.next = e
	t.list.prev = e
}

// Log writes a line for the keys evicted since the last line, at most
// once every 10 s (the others are counted in the next). Call it outside
// the publisher's lock.
func (t *Table) Log() {
	t.mu.Lock()
	n := t.unlogged
	if n == 0 {
		t.mu.Unlock()
		return
	}
	if _, ok := t.lines.Allow("evicted"); !ok {
		t.mu.Unlock()
		return
	}
	t.unlogged = 0
	t.mu.Unlock()
	t.log.Warn("snapshot: the table is full; the least recently updated keys were evicted",
		"evicted", n, "max_keys", t.cfg.MaxKeys, "so_far", t.evictions.Load())
}

// Stats counts what the table holds and did.
type Stats struct {
	// Keys is the number of keys with a latest message.
	Keys int `json:"keys"`
	// Evictions counts keys evicted at the bound.
	Evictions uint64 `json:"evictions"`
	// Served counts snapshots taken by clients.
	Served uint64 `json:"served"`
}

// Stats returns the counters.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	n := t.live
	t.mu.Unlock()
	return Stats{Keys: n, Evictions: t.evictions.Load(), Served: t.served.Load()}
}

// Get returns key's latest message, or nil.
func (t *Table) Get(key []byte) *message.Message {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.keys[string(key)]; e != nil {
		return e.msg
	}
	return nil
}

// StartSeeding marks the table as being seeded: Ready-for-snapshots
// (WaitSeeded) waits until Seeded is called. Call it before the
// publisher starts.
func (t *Table) StartSeeding() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seeding, t.stale = true, false
	t.seeded = make(chan struct{})
}

// Seed puts m, read back from Kafka at start-up, unless the key holds a
// newer message: one of the same partition at or past m's offset, or one
// the publisher put (or deleted) in another partition. At the bound, a
// seeded record takes the place of the oldest seeded record (by record
// time), or is dropped when it is the oldest or nothing seeded is left:
// seeding never evicts what the publisher put, nor a tombstone marker,
// and never puts back a key at or below its partition's floor (the
// highest offset the publisher's side evicted while seeding). A record
// not kept at the bound is counted as evicted. Ignored unless seeding
// (StartSeeding), and once the table was reset while seeding.
func (t *Table) Seed(m *message.Message) {
	if m.Key == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.seeding || t.stale || t.newerLocked(m.Key, m.Partition, m.Offset) {
		return
	}
	t.seedLocked(m)
}

// seedLocked puts m as a seeded entry (see Seed). t.mu must be held.
func (t *Table) seedLocked(m *message.Message) {
	if e := t.keys[keyOf(m.Key)]; e != nil {
		t.detachLocked(e)
		delete(t.keys, e.key)
	} else if f, ok := t.floor[m.Partition]; ok && m.Offset <= f {
		t.countEvictedLocked()
		return
	}
	if len(t.keys) >= t.cfg.MaxKeys {
		if len(t.seeds) == 0 || olderSeed(m, t.seeds[0].msg) {
			t.countEvictedLocked()
			return
		}
		t.countEvictedLocked()
		t.removeLocked(t.seeds[0])
	}
	e := &entry{key: keyOf(m.Key), msg: m, partition: m.Partition, offset: m.Offset, fromSeed: true}
	t.keys[e.key] = e
	heap.Push(&t.seeds, e)
	t.live++
	t.changedLocked(e.key, m)
}

// SeedDelete removes key, deleted by a tombstone read back at start-up,
// unless the key holds a newer message (see Seed). Ignored unless
// seeding.
func (t *Table) SeedDelete(key []byte, partition int32, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.keys[string(key)]; t.seeding && !t.stale && e != nil && !t.newerLocked(key, partition, offset) {
		t.removeLocked(e)
	}
}

// newerLocked reports whether key's entry is newer than a record at
// offset of partition. t.mu must be held.
func (t *Table) newerLocked(key []byte, partition int32, offset int64) bool {
	e := t.keys[string(key)]
	switch {
	case e == nil:
		return false
	case e.partition == partition:
		return e.offset >= offset
	default:
		return !e.fromSeed
	}
}

// Seeded ends seeding: the tombstone markers go, the seeded entries join
// the eviction order as less recently updated than anything the
// publisher put, oldest record first, and WaitSeeded returns. It walks
// every key once, under the table's lock, at the end of start-up.
func (t *Table) Seeded() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.seeding {
		return
	}
	t.seeding = false
	clear(t.floor)
	for e := t.list.next; e != &t.list; {
		next := e.next
		if e.msg == nil {
			t.removeLocked(e)
		}
		e = next
	}
	first := t.list.next
	for len(t.seeds) > 0 {
		e := heap.Pop(&t.seeds).(*entry)
		e.prev, e.next = first.prev, first
		first.prev.next = e
		first.prev = e
	}
	close(t.seeded)
}

// IsSeeded reports whether seeding is done.
func (t *Table) IsSeeded() bool {
	select {
	case <-t.seededChan():
		return true
	default:
		return false
	}
}

func (t *Table) seededChan() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seeded
}

// WaitSeeded waits until seeding is done, or returns ctx's error.
func (t *Table) WaitSeeded(ctx context.Context) error {
	select {
	case <-t.seededChan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Served counts one snapshot taken by a client.
func (t *Table) Served() { t.served.Add(1) }

// olderSeed reports whether seeded record a is older than b: by record
// time, then by place.
func olderSeed(a, b *message.Message) bool {
	return cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset)) < 0
}

// seedHeap orders seeded entries, oldest record first (container/heap).
type seedHeap []*entry

func (h seedHeap) Len() int           { return len(h) }
func (h seedHeap) Less(i, j int) bool { return olderSeed(h[i].msg, h[j].msg) }
func (h seedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *seedHeap) Push(x any) {
	e := x.(*entry)
	e.heapIdx = len(*h)
	*h = append(*h, e)
}
func (h *seedHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.heapIdx = -1
	return e
}

// Latest returns the message a record whose messages are msgs (at least
// one) leaves in the table: its last. The rows of a record of many Quix
// rows share one allocation, their Origin and one buffer per shape's
// frames, so its last row is copied with frames and Origin of its own:
// the table keeps one row alive, not the whole record.
func Latest(msgs []*message.Message) *message.Message {
	last := msgs[len(msgs)-1]
	if len(msgs) == 1 {
		return last
	}
	m := &message.Message{Key: last.Key, Offset: last.Offset, Partition: last.Partition,
		Row: last.Row, Rows: last.Rows, Timestamp: last.Timestamp}
	for s, f := range last.Frames {
		m.Frames[s] = bytes.Clone(f)
	}
	if o := last.Origin; o != nil {
		m.Origin = &message.Origin{Cursor: strings.Clone(o.Cursor), Head: strings.Clone(o.Head)}
		if o.Before != nil {
			before := o.Before.Clone()
			m.Origin.Before = &before
		}
	}
	return m
}
