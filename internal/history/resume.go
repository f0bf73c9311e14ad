package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/snapshot"
)

// DefaultResumeConcurrency bounds the clients catching up at once; the
// others wait, parked (they lose nothing: what they miss meanwhile is in
// the history or in Kafka).
const DefaultResumeConcurrency = 64

// DefaultAheadWait bounds how long a catch-up waits for the publisher to
// reach a client ahead of it (see ResumerConfig.AheadWait).
const DefaultAheadWait = 30 * time.Second

// A catch-up reads the history historyChunk messages at a time; once
// fewer than joinStretch are left, it takes them and joins in one step
// between two batches (Tap.join).
const (
	historyChunk = 1024
	joinStretch  = 64
)

// ResumerConfig configures a Resumer.
type ResumerConfig struct {
	Tap     *Tap
	Store   *Store // nil: no history, everything from Kafka
	Reader  *Reader
	Encoder *encode.Encoder
	// Table is the latest message per key, for snapshots
	// (wsdest.StartSnapshot); nil refuses them.
	Table *snapshot.Table
	// Concurrency bounds the clients catching up at once. Default
	// DefaultResumeConcurrency.
	Concurrency int
	// AheadWait bounds the time a catch-up waits, in all, for the
	// publisher to reach a client ahead of it in some partition (a cursor
	// from a replica further on, or, in consumer-group mode, of a
	// partition this replica does not publish); past it the catch-up
	// fails closed. While it waits it holds no concurrency slot. Default
	// DefaultAheadWait.
	AheadWait time.Duration
	// Logger receives the resumer's log lines. Default slog.Default().
	Logger *slog.Logger
}

// Resumer fills clients that start from a position. Its methods are safe
// for concurrent use.
type Resumer struct {
	cfg   ResumerConfig
	log   *slog.Logger
	sem   chan struct{}
	done  atomic.Uint64 // catch-ups that joined the live stream
	gaps  atomic.Uint64 // gap notices sent
	holes atomic.Uint64 // catch-ups failed closed on a hole (a bug)
	scans chan struct{} // last=N scans of Kafka running; see lastScans

	// point is the last snapshot point taken (snapshotPoint); nil
	// until one is. pointMu guards it, never held while one is taken.
	pointMu sync.Mutex
	point   *snapshotPoint
}

// NewResumer returns a resumer.
func NewResumer(cfg ResumerConfig) *Resumer {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultResumeConcurrency
	}
	if cfg.AheadWait <= 0 {
		cfg.AheadWait = DefaultAheadWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Resumer{cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, cfg.Concurrency), scans: make(chan struct{}, lastScans)}
}

// ResumeStats counts catch-ups.
type ResumeStats struct {
	// Resumed counts the catch-ups that joined the live stream (not
	// those whose client left first).
	Resumed uint64 `json:"resumed"`
	Gaps    uint64 `json:"gap_notices"`
	// Holes counts the catch-ups failed closed because a position would
	// have moved over records the client was not sent (a bug).
	Holes uint64 `json:"holes"`
}

// Stats returns the counters.
func (r *Resumer) Stats() ResumeStats {
	return ResumeStats{Resumed: r.done.Load(), Gaps: r.gaps.Load(), Holes: r.holes.Load()}
}

// Identity returns the topic identity cursors are checked against.
func (r *Resumer) Identity() wsdest.TopicIdentity { return r.cfg.Tap.Identity() }

// ErrCatchUp is returned by Resume when the client's past could not be
// delivered; the caller closes the client (1011, wsframe.ReasonCatchUpFailed),
// which can resume from its cursor.
var ErrCatchUp = errors.New("catch-up failed")

// errHole is a move of a client's position over offsets it was not sent
// and that Kafka still holds: the invariant of the package, broken.
var errHole = errors.New("hole in the stream")

// errPastEnd: a cursor past Kafka's end offset of a partition, which no
// replica published (cursors are not authenticated).
var errPastEnd = errors.New("cursor past the end of the topic")

// errAhead: the publisher did not reach a client ahead of it within
// ResumerConfig.AheadWait.
var errAhead = errors.New("cursor ahead of what this replica published")

// errRecreated: the topic was recreated while the client caught up.
var errRecreated = errors.New("topic recreated during the catch-up")

// Resume fills c, which was added with ClientOptions.Park, from st on,
// then joins it to the live stream; match is its subscription's key test.
// It returns when c is live or gone, or with an error wrapping ErrCatchUp.
func (r *Resumer) Resume(ctx context.Context, c *hub.Client, st wsdest.Start, match func(key []byte) bool) error {
	if st.Kind == wsdest.StartSnapshot {
		// Before a concurrency slot is taken: seeding may take a while,
		// and the clients resuming meanwhile must not wait for it.
		if err := r.waitSeeded(ctx); err != nil {
			return err
		}
	}
	j := newJob(r, c, match)
	if err := j.acquire(ctx); err != nil {
		return err
	}
	defer j.release()
	out, err := j.run(ctx, st)
	switch {
	case errors.Is(err, errPastEnd), errors.Is(err, errAhead):
		r.log.Warn("history: catch-up refused", "client", c.ID(), "err", err)
		return fmt.Errorf("%w: %w", ErrCatchUp, err)
	case errors.Is(err, errHole):
		r.holes.Add(1)
		r.log.Error("history: catch-up failed closed", "client", c.ID(), "err", err)
		return fmt.Errorf("%w: %w", ErrCatchUp, err)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrCatchUp, err)
	case out == joined:
		r.done.Add(1)
	}
	return nil
}

// outcome is where a step of a catch-up leaves it.
type outcome uint8

const (
	more   outcome = iota // not done yet
	joined                // the client is live
	left                  // the client is closing
)

// job is one client's catch-up; it is owned by one goroutine.
type job struct {
	r     *Resumer
	c     *hub.Client
	shape message.Shape
	want  [message.NumShapes]bool
	match func(key []byte) bool
	// pos is what the client has: it moves only in advance.
	pos wsdest.Cursor
	// aligned: pos is the publish position just after the last message
	// delivered, which came from the history, so the history's frames
	// (with their publish cursors) are the client's as they are.
	aligned bool
	// epoch is the Store's Epoch when the client was placed: the
	// history's messages of another belong to a recreated topic.
	epoch uint64
	// slot: the job holds one of the Resumer's concurrency slots.
	slot bool
	// aheadBy is when waiting for the publisher to reach the client
	// fails (zero until it first waits).
	aheadBy time.Time
}

// acquire takes a concurrency slot, or returns ctx's error.
func (j *job) acquire(ctx context.Context) error {
	select {
	case j.r.sem <- struct{}{}:
		j.slot = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives the job's concurrency slot back, if it holds one.
func (j *job) release() {
	if j.slot {
		j.slot = false
		<-j.r.sem
	}
}

func newJob(r *Resumer, c *hub.Client, match func(key []byte) bool) *job {
	j := &job{r: r, c: c, shape: c.Shape(), match: match}
	j.want[j.shape] = true
	// Reframe builds a client's SSE frame from the WebSocket one.
	switch j.shape {
	case message.ShapeSSEPlain:
		j.want[message.ShapePlain] = true
	case message.ShapeSSEEnvelope:
		j.want[message.ShapeEnvelope] = true
	}
	if v := c.View(); v != nil {
		j.want[message.ShapePlain] = true // a view reads the value there
		if h, ok := v.(interface{ NeedsHead() bool }); ok && h.NeedsHead() {
			j.want[message.ShapeEnvelope] = true // and the headers in the envelope
		}
	}
	return j
}

// run places the client at st, then catches up step by step until it
// joins the live stream or leaves.
func (j *job) run(ctx context.Context, st wsdest.Start) (outcome, error) {
	if err := j.start(ctx, st); errors.Is(err, errLeft) {
		return left, nil
	} else if err != nil {
		return more, err
	}
	for {
		out, err := j.step(ctx)
		if err != nil || out != more {
			return out, err
		}
	}
}

// start places the client: the position of each partition it starts at
// (not a move: it has nothing yet), after a reset notice for a cursor of a
// topic since recreated, or after the N records of last=N.
func (j *job) start(ctx context.Context, st wsdest.Start) error {
	if err := j.r.cfg.Tap.waitReady(ctx); err != nil {
		return err
	}
	id := j.r.cfg.Tap.Identity()
	if s := j.r.cfg.Store; s != nil {
		j.epoch = s.Epoch() // after the identity: see step
	}
	j.pos = wsdest.Cursor{Topic: id}
	switch st.Kind {
	case wsdest.StartCursor:
		if st.Cursor.Topic.ID != id.ID && st.Cursor.Topic.ID != ([8]byte{}) && id.ID != ([8]byte{}) {
			j.notice(encode.ResetNotice("topic_recreated"))
		} else {
			j.pos = st.Cursor.Clone()
			j.pos.Topic = id
			if err := j.checkEnd(ctx); err != nil {
				return err
			}
		}
	case wsdest.StartEarliest:
	case wsdest.StartTime:
		j.pos.Since = st.Time
	case wsdest.StartLast:
		if err := j.last(ctx, st.Last); err != nil {
			return err
		}
	case wsdest.StartSnapshot:
		if err := j.snapshot(ctx); err != nil {
			return err
		}
	default:
		return fmt.Errorf("history: start kind %d is not a position", st.Kind)
	}
	return j.resolve(ctx, true)
}

// checkEnd refuses a position past Kafka's end offset of a partition:
// no replica published it, so no publisher would ever reach it. A shared
// listing past the position settles it; otherwise a fresh one does (the
// shared one may predate what another replica published).
func (j *job) checkEnd(ctx context.Context) error {
	p := int32(-1)
	for _, shared := range []bool{true, false} {
		ends, err := j.r.cfg.Reader.EndOffsets(ctx, shared)
		if err != nil {
			return err
		}
		if p = pastEnd(&j.pos, ends); p < 0 {
			return nil
		}
	}
	o, _ := j.pos.Next(p)
	return fmt.Errorf("%w: offset %d of partition %d", errPastEnd, o, p)
}

// pastEnd returns a partition in which pos is past ends (or that ends
// does not list), or -1.
func pastEnd(pos *wsdest.Cursor, ends map[int32]int64) int32 {
	for p := range int32(len(pos.Offsets)) {
		o, _ := pos.Next(p)
		if e, ok := ends[p]; o >= 0 && (!ok || o > e) {
			return p
		}
	}
	return -1
}

// resolve places the partitions the client has no position in yet and
// the publisher has one in: at the first record stamped at or after
// pos.Since when set, else at the first Kafka holds; from a shared
// listing or a fresh one.
func (j *job) resolve(ctx context.Context, shared bool) error {
	rd := j.r.cfg.Reader
	starts, err := rd.StartOffsets(ctx, shared)
	if err != nil {
		return err
	}
	var after map[int32]int64
	pub := j.r.cfg.Tap.Published()
	for p, s := range starts {
		if o, _ := j.pos.Next(p); o >= 0 {
			continue
		}
		if o, _ := pub.Next(p); o < 0 {
			continue // the publisher knows nothing of p yet: see compare
		}
		if !j.pos.Since.IsZero() {
			if after == nil {
				if after, err = rd.OffsetsAfter(ctx, j.pos.Since); err != nil {
					return err
				}
			}
			s = max(s, after[p])
		}
		j.place(p, s)
	}
	return nil
}

// place sets the position of a partition the client has none in.
func (j *job) place(p int32, o int64) {
	for int(p) >= len(j.pos.Offsets) {
		j.pos.Offsets = append(j.pos.Offsets, wsdest.Unknown)
	}
	if j.pos.Offsets[p] < 0 {
		j.pos.Offsets[p] = o
	}
}

// step delivers the next piece of what the client lacks of what was
// published: from Kafka for a partition the history does not cover at the
// client's position, else from the history; with little left, it joins
// the client to the live stream; a client ahead of what was published
// (its cursor came from a replica further on) waits for the next batch
// (waitAhead).
func (j *job) step(ctx context.Context) (outcome, error) {
	tap := j.r.cfg.Tap
	wait := tap.nextBatch()
	pub := tap.Published()
	if pub.Topic != j.pos.Topic {
		return more, errRecreated
	}
	behind, ahead := j.compare(pub)
	if j.lacks(pub) {
		// A partition added since the client was placed (the shared
		// listing may not know it yet: a fresh one does).
		if err := j.resolve(ctx, false); err != nil {
			return more, err
		}
		if j.lacks(pub) {
			return more, errors.New("history: a published partition is not in Kafka's listing")
		}
		return more, nil
	}
	store := j.r.cfg.Store
	for _, p := range behind {
		at, _ := j.pos.Next(p)
		from, end := int64(-1), int64(-1)
		if store != nil {
			from, end = store.Range(p)
		}
		if from < 0 || from > at || end <= at {
			to := pub.Offsets[p]
			if from > at {
				to = min(to, from)
			}
			return j.fromKafka(ctx, p, to)
		}
	}
	if store != nil {
		if b := store.Read(&j.pos, historyChunk); b.Epoch != j.epoch {
			return more, errRecreated
		} else if len(b.Msgs) >= joinStretch {
			return j.deliver(ctx, fromHistory, b.Msgs, b.Spans)
		}
	}
	if len(behind) == 0 && ahead {
		return j.waitAhead(ctx, wait)
	}
	return j.join()
}

// waitAhead waits for the next batch (wait) without holding a concurrency
// slot, and fails with errAhead once the catch-up has waited
// ResumerConfig.AheadWait since it first did.
func (j *job) waitAhead(ctx context.Context, wait <-chan struct{}) (outcome, error) {
	if j.aheadBy.IsZero() {
		j.aheadBy = time.Now().Add(j.r.cfg.AheadWait)
	}
	timer := time.NewTimer(time.Until(j.aheadBy))
	defer timer.Stop()
	j.release()
	select {
	case <-wait:
	case <-timer.C:
		return more, fmt.Errorf("%w: waited %v", errAhead, j.r.cfg.AheadWait)
	case <-ctx.Done():
		return left, nil
	}
	if err := j.acquire(ctx); err != nil {
		return left, nil
	}
	return more, nil
}

// compare returns the partitions in which the client is behind pub, and
// whether it is ahead of pub in any.
func (j *job) compare(pub *wsdest.Cursor) (behind []int32, ahead bool) {
	for p := range int32(max(len(pub.Offsets), len(j.pos.Offsets))) {
		t, _ := pub.Next(p)
		o, rows := j.pos.Next(p)
		if t < 0 {
			// The publisher has no position in p yet: it has published
			// nothing of it (a partition created since it started, or a
			// topic recreated since). A client with records of p waits
			// for it to publish some; one without is not placed in p.
			ahead = ahead || o >= 0
			continue
		}
		_, trows := pub.Next(p)
		switch {
		case o < 0 || o < t || o == t && rows < trows:
			behind = append(behind, p)
		case o > t || rows > trows:
			ahead = true
		}
	}
	return behind, ahead
}

// lacks reports whether pub has a position in a partition the client has
// none in.
func (j *job) lacks(pub *wsdest.Cursor) bool {
	for p, t := range pub.Offsets {
		if o, _ := j.pos.Next(int32(p)); t >= 0 && o < 0 {
			return true
		}
	}
	return false
}

// join delivers what is left of the history and joins the client to the
// live stream, between two batches, if it then has exactly what was
// published; otherwise it delivers what it took and the next step goes
// on.
func (j *job) join() (outcome, error) {
	out := more
	var msgs []*message.Message
	var err error
	j.r.cfg.Tap.join(func(pub *wsdest.Cursor) bool {
		if pub.Topic != j.pos.Topic {
			err = errRecreated
			return false
		}
		if s := j.r.cfg.Store; s != nil {
			b := s.Read(&j.pos, 2*joinStretch)
			if b.Epoch != j.epoch {
				err = errRecreated
				return false
			}
			if msgs, err = j.advance(fromHistory, b.Msgs, b.Spans, nil); err != nil {
				return false
			}
		}
		// No waiting under the tap's lock: what is left is short.
		if !j.c.Push(msgs) {
			out = left
			return false
		}
		if behind, ahead := j.compare(pub); len(behind) > 0 || ahead {
			return false
		}
		if j.c.Join() {
			out = joined
		} else {
			out = left
		}
		return true
	})
	return out, err
}

// fromKafka delivers the next piece of partition p below to from Kafka,
// after a gap notice if Kafka no longer holds the client's position.
func (j *job) fromKafka(ctx context.Context, p int32, to int64) (outcome, error) {
	rd := j.r.cfg.Reader
	at, _ := j.pos.Next(p)
	starts, err := rd.StartOffsets(ctx, true)
	if err != nil {
		return more, err
	}
	if s := starts[p]; s > at {
		return j.deliver(ctx, fromGone, nil, []Span{{P: p, From: at, To: min(s, to)}}, starts)
	}
	ch := rd.Read(ctx, p, at, to)
	if ch.Err != nil {
		return more, ch.Err
	}
	// Kafka gives the records of a topic recreated under the same name
	// as readily as the old one's: the identity, asked after the read,
	// says which these are (the publisher may not have noticed yet).
	if len(ch.Recs) > 0 {
		id, err := rd.IdentityAfter(ctx, time.Now())
		if err != nil {
			return more, err
		}
		if id != j.pos.Topic {
			return more, errRecreated
		}
	}
	if first := firstOffset(ch); first > at {
		// Nothing at the client's position: deleted since the listing
		// (the gap is announced), or Kafka holds no record there.
		starts, err := rd.StartOffsets(ctx, false)
		if err != nil {
			return more, err
		}
		if s := starts[p]; s > at {
			return j.deliver(ctx, fromGone, nil, []Span{{P: p, From: at, To: min(s, first)}}, starts)
		}
	}
	return j.deliver(ctx, fromKafka, j.encode(ch.Recs), []Span{{P: p, From: at, To: ch.Next}})
}

func firstOffset(ch Chunk) int64 {
	if len(ch.Recs) > 0 {
		return ch.Recs[0].Offset
	}
	return ch.Next
}

// encode builds this client's messages for records read from Kafka, with
// its own cursors (from pos on; pos itself moves in advance): none for a
// record it does not take.
func (j *job) encode(recs []*wsdest.Record) []*message.Message {
	var out []*message.Message
	cur := j.pos.Clone()
	for _, rec := range recs {
		if !j.match(rec.Key) {
			cur.Advance(rec.Partition, rec.Offset, 0, 1)
			continue
		}
		out = j.encodeRecord(out, rec, &cur)
	}
	return out
}

// encodeRecord appends the messages of rec that have a frame of this
// client's shape (a value that is not JSON has no plain frame), encoded
// at cur.
func (j *job) encodeRecord(dst []*message.Message, rec *wsdest.Record, cur *wsdest.Cursor) []*message.Message {
	n := len(dst)
	dst = j.r.cfg.Encoder.EncodeAt(dst, rec, j.want, cur)
	kept := dst[:n]
	for _, m := range dst[n:] {
		if m.Frames[j.shape] != nil {
			kept = append(kept, m)
		}
	}
	return kept
}

// origin says where the messages given to advance come from.
type origin uint8

const (
	fromHistory origin = iota // the Store's, with their publish cursors
	fromKafka                 // encoded for this client (job.encode)
	fromGone                  // none: ranges Kafka no longer holds
)

func (o origin) String() string {
	return [...]string{"history", "Kafka", "gap"}[o]
}

// advance is where a client's position moves, and the only place (the
// invariant of the package). Each span says what a source knows of its
// partition: msgs hold every message of span.P published at offsets
// [From, To), from the client's position on (fromHistory, fromKafka); or
// Kafka no longer holds [From, To), as the listing starts shows
// (fromGone), and the range is announced with a gap notice. advance
// returns the messages to queue, in order, and moves the position to the
// end of each span. A span that starts past the client's position, a gap
// Kafka still holds part of, or a message out of its span or out of
// order is a hole: advance moves nothing and returns errHole.
func (j *job) advance(from origin, msgs []*message.Message, spans []Span, starts map[int32]int64) ([]*message.Message, error) {
	for _, sp := range spans {
		o, _ := j.pos.Next(sp.P)
		if o < 0 || sp.From > o {
			return nil, fmt.Errorf("%w: partition %d: the client is at %d, the %s gives from %d", errHole, sp.P, o, from, sp.From)
		}
		if from == fromGone && (sp.From != o || sp.To > starts[sp.P]) {
			return nil, fmt.Errorf("%w: partition %d: a gap [%d, %d) but Kafka holds from %d", errHole, sp.P, sp.From, sp.To, starts[sp.P])
		}
	}
	start := j.pos.Clone()
	var out []*message.Message
	for _, m := range msgs {
		sp := spanOf(spans, m.Partition)
		if sp == nil || m.Offset < sp.From || m.Offset >= sp.To {
			j.pos = start
			return nil, fmt.Errorf("%w: partition %d: a message at %d outside the %s's span", errHole, m.Partition, m.Offset, from)
		}
		if start.Delivered(m.Partition, m.Offset, m.Row) {
			continue // the client had it before this call
		}
		if j.pos.Delivered(m.Partition, m.Offset, m.Row) {
			j.pos = start
			return nil, fmt.Errorf("%w: partition %d: a message at %d out of order from the %s", errHole, m.Partition, m.Offset, from)
		}
		j.pos.Advance(m.Partition, m.Offset, m.Row, m.Rows)
		if from != fromKafka && (!j.match(m.Key) || !encode.Deliverable(m, j.shape)) {
			continue
		}
		if m = j.view(m); m == nil {
			continue
		}
		if from != fromKafka {
			m = j.frame(m)
		}
		out = append(out, m)
	}
	for _, sp := range spans {
		if from == fromGone {
			j.gap(sp)
		}
		if o, _ := j.pos.Next(sp.P); o < sp.To {
			j.aligned = false
			j.pos.Offsets[sp.P] = sp.To
			if j.pos.PartialPartition == sp.P {
				j.pos.PartialRows = 0
			}
		}
	}
	if from != fromHistory {
		j.aligned = false
	}
	return out, nil
}

func spanOf(spans []Span, p int32) *Span {
	for i := range spans {
		if spans[i].P == p {
			return &spans[i]
		}
	}
	return nil
}

// view returns what the client's view (hub.View) makes of m, a message
// it selects by key: m itself without a view, nil when the view drops it.
// It is applied before frame, to the message with the frames the history
// keeps, from which a derived message is re-framed as the original
// would be.
func (j *job) view(m *message.Message) *message.Message {
	if v := j.c.View(); v != nil {
		return v.Apply(m)
	}
	return m
}

// frame returns the message the client gets for m, a message of the
// history: m itself once the client is aligned with the publish
// positions, else m re-framed with the client's own cursor.
func (j *job) frame(m *message.Message) *message.Message {
	if !j.aligned {
		if c, ok := m.Position(); ok && samePositions(&c, &j.pos) {
			j.aligned = true
		}
	}
	switch {
	case !j.aligned:
		return encode.Reframe(m, j.shape, j.pos.String())
	case m.Frames[j.shape] == nil:
		// Published while nobody had this shape: built from the frames
		// (and envelope head) the history keeps, with the shared cursor.
		return encode.Reframe(m, j.shape, m.Cursor())
	}
	return m
}

// samePositions reports whether a and b are at the same place in every
// partition.
func samePositions(a, b *wsdest.Cursor) bool {
	n := max(len(a.Offsets), len(b.Offsets))
	for p := range int32(n) {
		ao, ar := a.Next(p)
		bo, br := b.Next(p)
		if ao != bo || ar != br {
			return false
		}
	}
	return true
}

// gap announces that Kafka no longer holds sp.
func (j *job) gap(sp Span) {
	j.notice(encode.GapNotice(sp.P, sp.From, sp.To))
	j.r.gaps.Add(1)
}

// deliver moves the position over msgs and spans (advance) and queues
// what the client gets, paced by its backlog.
func (j *job) deliver(ctx context.Context, from origin, msgs []*message.Message, spans []Span, starts ...map[int32]int64) (outcome, error) {
	var st map[int32]int64
	if len(starts) > 0 {
		st = starts[0]
	}
	out, err := j.advance(from, msgs, spans, st)
	if err != nil {
		return more, err
	}
	if !j.push(ctx, out) {
		return left, nil
	}
	return more, nil
}

// push queues msgs for the client, waiting while its backlog is above half
// its queue bound. It reports false when the client is closing.
func (j *job) push(ctx context.Context, msgs []*message.Message) bool {
	limit := j.c.MaxQueueBytes() / 2
	for len(msgs) > 0 {
		q, ok := j.c.WaitBacklog(ctx, limit)
		if !ok {
			return false
		}
		n, cost := 0, q
		for n < len(msgs) && (n == 0 || cost <= limit) {
			cost += j.c.Cost(msgs[n])
			n++
		}
		if !j.c.Push(msgs[:n]) {
			return false
		}
		msgs = msgs[n:]
	}
	return true
}

// notice queues a notice for the client (none for plain WebSocket
// clients).
func (j *job) notice(json []byte) {
	if m := encode.Notice(j.shape, json); m != nil {
		j.c.Push([]*message.Message{m})
	}
}
