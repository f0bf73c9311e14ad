package history

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/hub"
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
// cursor), appends the new messages to the Store, and keeps the published
// position for the Resumer. Encode and Published are called by the
// publishing goroutine only; the other methods are safe for concurrent
// use.
type Tap struct {
	cfg TapConfig
	log *slog.Logger

	// mu guards pos: the publisher holds it for a batch, Run for seeding
	// the positions of partitions not yet seen.
	mu  sync.Mutex
	pos wsdest.Cursor

	published atomic.Pointer[wsdest.Cursor] // pos after the last Publish
	ready     atomic.Bool                   // the identity is known
	// begun counts the batches Begin started, finished those Done ended;
	// written by the publisher.
	begun, finished atomic.Uint64
}

// NewTap returns a tap; Run must run beside the publisher for cursors to
// carry the topic's id.
func NewTap(cfg TapConfig) *Tap {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Tap{cfg: cfg, log: cfg.Logger}
	t.pos.Since = cfg.Since
	t.pos.Topic = wsdest.NewTopicIdentity(cfg.Reader.cfg.Topic, [16]byte{})
	p := t.pos.Clone()
	t.published.Store(&p)
	return t
}

// Ready reports whether the topic's identity is known, so that cursors
// carry it.
func (t *Tap) Ready() bool { return t.ready.Load() }

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
				p := t.pos.Clone()
				t.published.Store(&p)
				t.mu.Unlock()
				t.ready.Store(true)
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

// seedLocked sets the positions of partitions not seen yet. t.mu must be
// held.
func (t *Tap) seedLocked(offs map[int32]int64) {
	for p, o := range offs {
		if n, _ := t.pos.Next(p); n < 0 && o >= 0 {
			for int(p) >= len(t.pos.Offsets) {
				t.pos.Offsets = append(t.pos.Offsets, wsdest.Unknown)
			}
			t.pos.Offsets[p] = o
		}
	}
}

// Encode appends to dst the messages of recs, each with its cursor, and
// stores the new ones: with a Store, they are encoded for keeping
// (Encoder.EncodeKept), so that the Resumer can deliver them in any shape.
// Records at offsets already published (the consumer
// rewound after the broker lost data) are encoded with the current
// position and not stored again; a topic recreated under the same name
// (a new topic id) resets the position and the store.
func (t *Tap) Encode(dst []*hub.Message, recs []*wsdest.Record, want [hub.NumShapes]bool) []*hub.Message {
	t.mu.Lock()
	defer t.mu.Unlock()
	checked := false
	start := len(dst)
	// fresh collects the messages to store once a record of the batch
	// turned out to be old; until then every message is new and the
	// store takes dst[start:] as it is.
	var fresh []*hub.Message
	anyOld := false
	for _, rec := range recs {
		old := t.pos.Delivered(rec.Partition, rec.Offset, 0)
		if old && !checked {
			checked = true
			if t.recreated() {
				if t.cfg.Store != nil {
					t.cfg.Store.Reset()
				}
				// Nothing encoded before in this batch belongs to the
				// new topic's history.
				fresh, anyOld = fresh[:0], true
				old = false
			}
		}
		if old && !anyOld {
			anyOld = true
			fresh = append(fresh, dst[start:]...)
		}
		n := len(dst)
		if t.cfg.Store != nil && !old {
			dst = t.cfg.Encoder.EncodeKept(dst, rec, want, &t.pos)
		} else {
			dst = t.cfg.Encoder.EncodeAt(dst, rec, want, &t.pos)
		}
		if !old {
			if t.cfg.Store != nil && rec.Key != nil && len(dst) > n {
				// The key is a slice of the fetch's buffer, which holds
				// every record of the fetch: a stored message must not
				// keep that alive.
				key := bytes.Clone(rec.Key)
				for _, m := range dst[n:] {
					m.Key = key
				}
			}
			if anyOld {
				fresh = append(fresh, dst[n:]...)
			}
		}
	}
	if t.cfg.Store != nil {
		if anyOld {
			t.cfg.Store.Append(fresh)
		} else {
			t.cfg.Store.Append(dst[start:])
		}
	}
	return dst
}

// recreated asks Kafka for the topic's id and, if it changed, resets the
// position to the new topic's start and reports true. t.mu must be held.
func (t *Tap) recreated() bool {
	ctx, cancel := context.WithTimeout(context.Background(), identityTimeout)
	defer cancel()
	id, _, err := t.cfg.Reader.Identity(ctx)
	if err != nil || id == t.pos.Topic || id.ID == ([8]byte{}) {
		return false
	}
	t.log.Warn("history: the topic was recreated; positions and history start again", "topic", t.cfg.Reader.cfg.Topic)
	t.pos = wsdest.Cursor{Topic: id}
	return true
}

// Begin starts a batch; call it before Hub.Wants, whose snapshot decides
// which frames the batch has.
func (t *Tap) Begin() { t.begun.Add(1) }

// Done records that the batch last encoded was published: the Resumer
// compares clients' positions with it. Call it after Hub.Publish.
func (t *Tap) Done() {
	t.mu.Lock()
	p := t.pos.Clone()
	t.mu.Unlock()
	t.published.Store(&p)
	t.finished.Store(t.begun.Load())
}

// settle waits until every batch begun before the call is published (in
// the history, when there is one): a client added while a batch was
// being encoded may have no frame in it, and must find it in the history.
// It waits at most one Publish.
func (t *Tap) settle(ctx context.Context) error {
	b := t.begun.Load()
	for t.finished.Load() < b {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}
