package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/hub"
)

// DefaultResumeConcurrency bounds the clients catching up at once; the
// others wait, parked (they lose nothing: what they miss meanwhile is in
// the history or in Kafka).
const DefaultResumeConcurrency = 64

// pushPace: while a client's backlog is above half its queue bound, the
// catch-up waits this long before pushing more.
const pushPace = 2 * time.Millisecond

// A client catching up from the history takes it in paced chunks while
// parked until fewer than lastStretch messages are left (at most
// maxParkedRounds chunks); the rest goes ahead of the held live stream.
const (
	lastStretch     = 256
	maxParkedRounds = 64
)

// ResumerConfig configures a Resumer.
type ResumerConfig struct {
	Tap     *Tap
	Store   *Store // nil: no history, everything from Kafka
	Reader  *Reader
	Encoder *encode.Encoder
	// Concurrency bounds the clients catching up at once. Default
	// DefaultResumeConcurrency.
	Concurrency int
	// Logger receives the resumer's log lines. Default slog.Default().
	Logger *slog.Logger
}

// Resumer fills clients that start from a position. Its methods are safe
// for concurrent use.
type Resumer struct {
	cfg  ResumerConfig
	log  *slog.Logger
	sem  chan struct{}
	done atomic.Uint64 // catch-ups finished
	gaps atomic.Uint64 // gap notices sent
}

// NewResumer returns a resumer.
func NewResumer(cfg ResumerConfig) *Resumer {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultResumeConcurrency
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Resumer{cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, cfg.Concurrency)}
}

// ResumeStats counts catch-ups.
type ResumeStats struct {
	Resumed uint64 `json:"resumed"`
	Gaps    uint64 `json:"gap_notices"`
}

// Stats returns the counters.
func (r *Resumer) Stats() ResumeStats {
	return ResumeStats{Resumed: r.done.Load(), Gaps: r.gaps.Load()}
}

// Identity returns the topic identity cursors are checked against.
func (r *Resumer) Identity() wsdest.TopicIdentity { return r.cfg.Tap.Identity() }

// ErrCatchUp is returned by Resume when Kafka could not serve the client's
// past; the caller closes the client.
var ErrCatchUp = errors.New("catch-up failed")

// Resume fills c, which was added with ClientOptions.Park, from st on,
// then hands it over to the live stream; match is its subscription's key
// test. It returns when c is live (or closing), or with an error wrapping
// ErrCatchUp.
func (r *Resumer) Resume(ctx context.Context, c *hub.Client, st Start, match func(key []byte) bool) error {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.sem }()
	j := &job{r: r, c: c, shape: c.Shape(), match: match}
	err := j.run(ctx, st)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCatchUp, err)
	}
	r.done.Add(1)
	return nil
}

// job is one client's catch-up; it is owned by one goroutine.
type job struct {
	r     *Resumer
	c     *hub.Client
	shape hub.Shape
	match func(key []byte) bool
	pos   wsdest.Cursor // what the client has received
	// shared: the publish cursor of a message just handed over covered pos,
	// so from now on the shared frames carry valid cursors for this client.
	shared bool
	want   [hub.NumShapes]bool
}

func (j *job) run(ctx context.Context, st Start) error {
	j.want[j.shape] = true
	// Reframe builds a client's frame from the WebSocket one.
	switch j.shape {
	case hub.ShapeSSEPlain:
		j.want[hub.ShapePlain] = true
	case hub.ShapeSSEEnvelope:
		j.want[hub.ShapeEnvelope] = true
	}
	// The batch being published now may be the first of a recreated
	// topic, which the client may even have seen on another connection:
	// take the identity once it is published.
	if err := j.r.cfg.Tap.settle(ctx); err != nil {
		return err
	}
	id := j.r.cfg.Tap.Identity()
	var prefix []*hub.Message
	switch st.Kind {
	case StartCursor:
		if st.Cursor.Topic.ID != id.ID && st.Cursor.Topic.ID != ([8]byte{}) && id.ID != ([8]byte{}) {
			j.notice(encode.ResetNotice("topic_recreated"))
			j.pos = wsdest.Cursor{Topic: id}
		} else {
			j.pos = st.Cursor.Clone()
			j.pos.Topic = id
		}
	case StartEarliest:
		j.pos = wsdest.Cursor{Topic: id}
	case StartTime:
		j.pos = wsdest.Cursor{Topic: id, Since: st.Time}
	case StartLast:
		var err error
		prefix, err = j.last(ctx, st.Last)
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("history: start kind %d is not a position", st.Kind)
	}
	if err := j.resolve(ctx, st.Kind != StartLast); err != nil {
		return err
	}
	if len(prefix) > 0 && !j.push(ctx, prefix) {
		return nil
	}
	// Far behind: read from Kafka while parked, up to what the history
	// holds (or the end listed now).
	ends, err := j.r.cfg.Reader.EndOffsets(ctx, true)
	if err != nil {
		return err
	}
	if ok, err := j.fromKafka(ctx, ends); !ok || err != nil {
		return err
	}
	// The history, while parked, in paced chunks, until what is left is
	// short: what is published meanwhile is the next chunk.
	if s := j.r.cfg.Store; s != nil {
		for range maxParkedRounds {
			snap := s.Since(func(p int32) int64 { o, _ := j.pos.Next(p); return o })
			if len(snap.Msgs) < lastStretch {
				break
			}
			var msgs []*hub.Message
			for _, m := range snap.Msgs {
				if m2 := j.take(m, true); m2 != nil {
					msgs = append(msgs, m2)
				}
			}
			if !j.push(ctx, msgs) {
				return nil
			}
		}
	}
	// The last stretch: hold the live stream, take the history, fill what
	// it lacks from Kafka, and release.
	j.c.HoldLive()
	// A batch being encoded when the client was added may hold no frame
	// of its shape: it must be in the history before the snapshot.
	if err := j.r.cfg.Tap.settle(ctx); err != nil {
		return err
	}
	var snap Snapshot
	if s := j.r.cfg.Store; s != nil {
		snap = s.Since(func(p int32) int64 { o, _ := j.pos.Next(p); return o })
	}
	// A partition the history holds nothing of had nothing published
	// since the listing above (it would be held), unless there is no
	// history.
	needKafka := j.r.cfg.Store == nil
	for p, o := range j.pos.Offsets {
		if p < len(snap.From) && snap.From[p] >= 0 && o < snap.From[p] || (p >= len(snap.From) || snap.From[p] < 0) && o < ends[int32(p)] {
			needKafka = true
		}
	}
	var ahead []*hub.Message
	if needKafka {
		ends, err := j.r.cfg.Reader.EndOffsets(ctx, false)
		if err != nil {
			return err
		}
		for p := range j.pos.Offsets {
			to := ends[int32(p)]
			if p < len(snap.From) && snap.From[p] >= 0 {
				to = min(to, snap.From[p])
			}
			msgs, err := j.readAll(ctx, int32(p), to)
			if err != nil {
				return err
			}
			ahead = append(ahead, msgs...)
		}
	}
	for _, m := range snap.Msgs {
		if m2 := j.take(m, true); m2 != nil {
			ahead = append(ahead, m2)
		}
	}
	// The floor is pos as fix leaves it; the job only reads pos from then
	// on.
	j.c.ReleaseFunc(ahead, func(m *hub.Message) *hub.Message { return j.take(m, false) }, &j.pos)
	if !j.shared && !j.r.cfg.Tap.Published().Covers(&j.pos) {
		j.r.log.Debug("history: client resumed ahead of this replica's position; live cursors lag its own until this replica catches up",
			"client", j.c.ID())
	}
	return nil
}

// resolve turns pos into an offset for every partition of the topic: the
// offsets it has, else (Since set) the first stamped at or after Since,
// else the first Kafka still has. Offsets Kafka no longer has are
// announced with a gap notice and skipped when gaps is set.
func (j *job) resolve(ctx context.Context, gaps bool) error {
	rd := j.r.cfg.Reader
	starts, err := rd.StartOffsets(ctx)
	if err != nil {
		return err
	}
	var after map[int32]int64
	n := int32(len(starts))
	for p := range n {
		if o, _ := j.pos.Next(p); o >= 0 {
			continue
		}
		if j.pos.Since.IsZero() {
			j.set(p, starts[p])
			continue
		}
		if after == nil {
			if after, err = rd.OffsetsAfter(ctx, j.pos.Since); err != nil {
				return err
			}
		}
		j.set(p, max(after[p], starts[p]))
	}
	if !gaps {
		return nil
	}
	for p := range n {
		o, _ := j.pos.Next(p)
		if s := starts[p]; o < s {
			j.notice(encode.GapNotice(p, o, s))
			j.r.gaps.Add(1)
			j.set(p, s)
		}
	}
	return nil
}

func (j *job) set(p int32, o int64) {
	for int(p) >= len(j.pos.Offsets) {
		j.pos.Offsets = append(j.pos.Offsets, wsdest.Unknown)
	}
	j.pos.Offsets[p] = o
	if j.pos.PartialRows > 0 && j.pos.PartialPartition == p {
		j.pos.PartialRows = 0
	}
}

// fromKafka reads each partition, while parked, from pos up to where the
// history starts holding it (or to ends when it holds nothing of it). It
// reports false when the client went away.
func (j *job) fromKafka(ctx context.Context, ends map[int32]int64) (bool, error) {
	for p := range j.pos.Offsets {
		to := ends[int32(p)]
		if s := j.r.cfg.Store; s != nil {
			if cov := s.Coverage(int32(p)); cov >= 0 {
				to = cov
			}
		}
		for {
			o, _ := j.pos.Next(int32(p))
			if o >= to {
				break
			}
			ch := j.r.cfg.Reader.Read(ctx, int32(p), o, to)
			if ch.Err != nil {
				return false, ch.Err
			}
			msgs := j.encode(ch.Recs)
			if ch.Next > o && len(ch.Recs) == 0 {
				j.set(int32(p), ch.Next)
			}
			if !j.push(ctx, msgs) {
				return false, nil
			}
			if n, _ := j.pos.Next(int32(p)); n < ch.Next {
				j.set(int32(p), ch.Next)
			}
		}
	}
	return true, nil
}

// readAll reads partition p from pos to to, for the last stretch (held).
func (j *job) readAll(ctx context.Context, p int32, to int64) ([]*hub.Message, error) {
	var out []*hub.Message
	for {
		o, _ := j.pos.Next(p)
		if o < 0 || o >= to {
			return out, nil
		}
		ch := j.r.cfg.Reader.Read(ctx, p, o, to)
		if ch.Err != nil {
			return nil, ch.Err
		}
		out = append(out, j.encode(ch.Recs)...)
		if n, _ := j.pos.Next(p); n < ch.Next {
			j.set(p, ch.Next)
		}
	}
}

// encode builds this client's messages for records read from Kafka, with
// its own cursors, advancing pos.
func (j *job) encode(recs []*wsdest.Record) []*hub.Message {
	var out []*hub.Message
	for _, rec := range recs {
		next, rows := j.pos.Next(rec.Partition)
		if next >= 0 && rec.Offset < next {
			continue
		}
		if !j.match(rec.Key) {
			j.set(rec.Partition, rec.Offset+1)
			continue
		}
		skip := int32(0)
		if rec.Offset == next {
			skip = rows // rows of the record delivered before the resume
		}
		n := len(out)
		out = j.r.cfg.Encoder.EncodeAt(out, rec, j.want, &j.pos)
		kept := out[:n]
		for _, m := range out[n:] {
			if m.Row >= skip && m.Frames[j.shape] != nil {
				kept = append(kept, m)
			}
		}
		out = kept
	}
	return out
}

// take decides what the client gets for a published message m (from the
// history, or live when held): nothing if it already has it or does not
// match (filter, for history messages), else m, re-framed with the
// client's own cursor until m's shared cursor covers the client's
// position.
func (j *job) take(m *hub.Message, filter bool) *hub.Message {
	if m.Rows == 0 {
		return m // a notice
	}
	if j.pos.Delivered(m.Partition, m.Offset, m.Row) {
		return nil
	}
	if filter && !j.match(m.Key) {
		j.pos.Advance(m.Partition, m.Offset, m.Row, m.Rows)
		return nil
	}
	j.pos.Advance(m.Partition, m.Offset, m.Row, m.Rows)
	if !j.shared {
		if c, ok := m.Position(); ok && c.Covers(&j.pos) {
			j.shared = true
			j.pos = c
		}
	}
	switch {
	case !j.shared:
		return encode.Reframe(m, j.shape, j.pos.String())
	case m.Frames[j.shape] == nil:
		// Published while nobody had this shape: built from the frames
		// (and envelope head) the history keeps, with the shared cursor.
		return encode.Reframe(m, j.shape, m.Cursor())
	}
	return m
}

// push queues msgs for the client, waiting while its backlog is above half
// its queue bound. It reports false when the client is closing.
func (j *job) push(ctx context.Context, msgs []*hub.Message) bool {
	limit := j.c.MaxQueueBytes() / 2
	for len(msgs) > 0 {
		q, closing := j.c.Backlog()
		if closing {
			return false
		}
		if q > limit {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(pushPace):
			}
			continue
		}
		n, cost := 0, q
		for n < len(msgs) && cost <= limit {
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
		j.c.Push([]*hub.Message{m})
	}
}

// last computes the start of a last=N client: the N most recent matching
// messages (history first, Kafka for partitions the history has too few
// of), merged by timestamp (each partition's in offset order), and pos
// set just before them (at the published position for partitions with
// none).
func (j *job) last(ctx context.Context, n int) ([]*hub.Message, error) {
	id := j.r.cfg.Tap.Identity()
	j.pos = wsdest.Cursor{Topic: id}
	var byPart [][]*hub.Message
	var from []int64
	if s := j.r.cfg.Store; s != nil {
		byPart, from = s.Last(n, func(m *hub.Message) bool { return encode.Deliverable(m, j.shape) && j.match(m.Key) })
	}
	rd := j.r.cfg.Reader
	starts, err := rd.StartOffsets(ctx)
	if err != nil {
		return nil, err
	}
	ends, err := rd.EndOffsets(ctx, true)
	if err != nil {
		return nil, err
	}
	pub := j.r.cfg.Tap.Published()
	parts := int32(len(ends))
	lists := make([][]*hub.Message, parts)
	for p := range parts {
		var hist []*hub.Message
		if int(p) < len(byPart) {
			hist = byPart[p]
		}
		bound := ends[p]
		if int(p) < len(from) && from[p] >= 0 {
			bound = from[p]
		}
		var older []*hub.Message
		if len(hist) < n && bound > starts[p] {
			var err error
			if older, err = j.lastFromKafka(ctx, p, starts[p], bound, n-len(hist)); err != nil {
				return nil, err
			}
		}
		lists[p] = append(older, hist...)
	}
	// The n newest by timestamp overall, each partition in offset order.
	var all []*hub.Message
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortStableFunc(all, func(a, b *hub.Message) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	if len(all) > n {
		all = all[len(all)-n:]
	}
	keep := make(map[*hub.Message]bool, len(all))
	for _, m := range all {
		keep[m] = true
	}
	first := make([]int64, parts)
	for p := range parts {
		first[p] = -1
		for _, m := range lists[p] {
			if keep[m] {
				first[p] = m.Offset
				break
			}
		}
		if first[p] < 0 {
			if o, _ := pub.Next(p); o >= 0 {
				first[p] = o
			} else {
				first[p] = ends[p]
			}
		}
		j.set(p, first[p])
	}
	// Merge by timestamp, each partition's list kept in its order.
	heads := make([]int, parts)
	var out []*hub.Message
	for {
		best := -1
		for p := range lists {
			for heads[p] < len(lists[p]) && !keep[lists[p][heads[p]]] {
				heads[p]++
			}
			if heads[p] == len(lists[p]) {
				continue
			}
			if best < 0 || lists[p][heads[p]].Timestamp < lists[best][heads[best]].Timestamp {
				best = p
			}
		}
		if best < 0 {
			break
		}
		m := lists[best][heads[best]]
		heads[best]++
		j.pos.Advance(m.Partition, m.Offset, m.Row, m.Rows)
		out = append(out, encode.Reframe(m, j.shape, j.pos.String()))
	}
	return out, nil
}

// maxLastScan bounds the records of one partition read from Kafka to find
// the last N matching ones.
const maxLastScan = 100000

// lastFromKafka returns the need newest messages of partition p below hi
// that the client gets, reading backwards from hi in windows that double,
// down to start or maxLastScan records.
func (j *job) lastFromKafka(ctx context.Context, p int32, start, hi int64, need int) ([]*hub.Message, error) {
	var out []*hub.Message
	size := int64(max(need, 64))
	for scanned := int64(0); len(out) < need && hi > start && scanned < maxLastScan; size *= 2 {
		lo := max(start, hi-size)
		recs, err := j.readRange(ctx, p, lo, hi)
		if err != nil {
			return nil, err
		}
		scanned += hi - lo
		var got []*hub.Message
		var tmp wsdest.Cursor
		for _, rec := range recs {
			if !j.match(rec.Key) {
				continue
			}
			k := len(got)
			got = j.r.cfg.Encoder.EncodeAt(got, rec, j.want, &tmp)
			kept := got[:k]
			for _, m := range got[k:] {
				if m.Frames[j.shape] != nil {
					kept = append(kept, m)
				}
			}
			got = kept
		}
		out = append(got, out...)
		hi = lo
	}
	if len(out) > need {
		out = out[len(out)-need:]
	}
	return out, nil
}

// readRange reads all of [lo, hi) of partition p.
func (j *job) readRange(ctx context.Context, p int32, lo, hi int64) ([]*wsdest.Record, error) {
	var out []*wsdest.Record
	for lo < hi {
		ch := j.r.cfg.Reader.Read(ctx, p, lo, hi)
		if ch.Err != nil {
			return nil, ch.Err
		}
		out = append(out, ch.Recs...)
		if ch.Next <= lo {
			break
		}
		lo = ch.Next
	}
	return out, nil
}
