// Package snapshot keeps the latest message of every key the publisher
// has seen (the Table), so that a client that asks for a snapshot starts
// with the latest value of every key it subscribes to, and then goes on
// live from the position the snapshot was taken at.
//
// The Table holds the messages the history keeps (the same
// *message.Message, built by encode.EncodeKept: the plain frame and the
// envelope's head), so a key costs a map entry, a list entry and a pointer
// beyond what the history holds. A record of many Quix rows counts as its
// last row. A record without a key is not in the table (nothing names
// it). A record with a null value (a Kafka tombstone) removes its key.
// At MaxKeys, the least recently updated key goes, counted (Stats) and
// logged (Log).
//
// Concurrency: the publisher updates the table (Put, Delete, Reset)
// under its own lock as it publishes, and a client's snapshot is taken
// under that same lock (View), so that a View always matches one
// published position. Seeding (Seed, SeedDelete, Seeded) runs beside the
// publisher and never replaces what the publisher put (see Seed). The
// Table's own lock is held for map and list work only, never for I/O.
package snapshot

import (
	"bytes"
	"context"
	"log/slog"
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
	live    int
	version uint64 // moves on every change
	view    *View  // the view of version, nil until asked for
	// seeding: tombstones leave a marker, so that seeding does not bring
	// back a key deleted since the record it reads.
	seeding  bool
	unlogged int // evictions not logged yet (Log)

	seeded    chan struct{} // closed once seeding is done (or never started)
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
	fromSeed   bool
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
		keys: make(map[string]*entry), seeded: make(chan struct{})}
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
	t.setLocked(m.Key, m, m.Partition, m.Offset, false)
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
		t.setLocked(bytes.Clone(key), nil, partition, offset, false)
		return
	}
	if e := t.keys[string(key)]; e != nil {
		t.removeLocked(e)
	}
}

// Reset empties the table (the topic was recreated: its keys' values are
// of another topic).
func (t *Table) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.keys)
	t.list.next, t.list.prev = &t.list, &t.list
	t.live = 0
	t.version++
}

// setLocked puts (or, msg nil, marks deleted) key as the most recently
// updated, evicting the least recently updated key past the bound.
// t.mu must be held.
func (t *Table) setLocked(key []byte, msg *message.Message, partition int32, offset int64, fromSeed bool) {
	e := t.keys[keyOf(key)]
	if e == nil {
		e = &entry{}
		t.evictLocked()
	} else {
		t.unlinkLocked(e)
		if e.msg != nil {
			t.live--
		}
	}
	e.key, e.msg, e.partition, e.offset, e.fromSeed = keyOf(key), msg, partition, offset, fromSeed
	t.keys[e.key] = e
	t.linkLocked(e)
	if msg != nil {
		t.live++
	}
	t.version++
}

// evictLocked makes room for one more key. t.mu must be held.
func (t *Table) evictLocked() {
	for len(t.keys) >= t.cfg.MaxKeys && t.list.next != &t.list {
		e := t.list.next
		if e.msg != nil {
			t.evictions.Add(1)
			t.unlogged++
		}
		t.removeLocked(e)
	}
}

func (t *Table) removeLocked(e *entry) {
	t.unlinkLocked(e)
	delete(t.keys, e.key)
	if e.msg != nil {
		t.live--
	}
	t.version++
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
	t.seeding = true
	t.seeded = make(chan struct{})
}

// Seed puts m, read back from Kafka at start-up, unless the key holds a
// newer message: one of the same partition at or past m's offset, or one
// the publisher put (or deleted) in another partition.
func (t *Table) Seed(m *message.Message) {
	if m.Key == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.newerLocked(m.Key, m.Partition, m.Offset) {
		return
	}
	t.setLocked(m.Key, m, m.Partition, m.Offset, true)
}

// SeedDelete removes key, deleted by a tombstone read back at start-up,
// unless the key holds a newer message (see Seed).
func (t *Table) SeedDelete(key []byte, partition int32, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.keys[string(key)]; e != nil && !t.newerLocked(key, partition, offset) {
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

// Seeded ends seeding: the tombstone markers go, and WaitSeeded returns.
func (t *Table) Seeded() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.seeding {
		return
	}
	t.seeding = false
	for e := t.list.next; e != &t.list; {
		next := e.next
		if e.msg == nil {
			t.removeLocked(e)
		}
		e = next
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

// View returns what the table holds now, immutable; the same View while
// nothing changed. Call it under the publisher's lock, so that the view
// matches the published position.
func (t *Table) View() *View {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.view != nil && t.view.version == t.version {
		return t.view
	}
	msgs := make([]*message.Message, 0, t.live)
	for e := t.list.next; e != &t.list; e = e.next {
		if e.msg != nil {
			msgs = append(msgs, e.msg)
		}
	}
	t.view = &View{version: t.version, msgs: msgs}
	return t.view
}

// Served counts one snapshot taken by a client.
func (t *Table) Served() { t.served.Add(1) }
