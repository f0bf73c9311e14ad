package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest"
)

// Defaults of ReaderConfig.
const (
	DefaultReadConcurrency = 4
	DefaultChunkRecords    = 2000
)

// A catch-up read waits at most fetchTimeout for one fetch, and gives up
// after fetchAttempts fetches in a row brought nothing: a range below what
// was published always holds something Kafka returns (records, or the
// markers of transactions), so silence means a slow or unreachable broker,
// never an empty range. The read then fails (and the client with it,
// closed with 1011 to resume from its cursor); it never skips the range.
const (
	fetchTimeout  = 5 * time.Second
	fetchAttempts = 3
)

// offsetsTTL is how long a listing of the topic's start offsets is reused,
// so that a reconnect storm costs one ListOffsets request, not one per
// client.
const offsetsTTL = 250 * time.Millisecond

// ReaderConfig configures a Reader. Zero values mean the documented
// defaults.
type ReaderConfig struct {
	// Topic is the topic to read.
	Topic string
	// Opts are the franz-go connection options (kafka.Config.ConnOpts).
	Opts []kgo.Opt
	// Concurrency bounds the partitions read at once, each by a franz-go
	// client of the reader's own. Default DefaultReadConcurrency.
	Concurrency int
	// ChunkRecords bounds the records one read returns. Default
	// DefaultChunkRecords.
	ChunkRecords int
	// Logger receives the reader's log lines. Default slog.Default().
	Logger *slog.Logger
}

// Reader is the shared catch-up reader: it reads ranges of the topic's
// partitions from Kafka for any number of clients at once, with at most
// Concurrency franz-go consumers (never one per client). Requests for the
// same partition that arrive while it is being read are served together by
// the next read, which starts at the lowest offset asked for. Its methods
// are safe for concurrent use; Close it when done.
type Reader struct {
	cfg ReaderConfig
	log *slog.Logger
	src source // Kafka itself (kafkaSource), or a stand-in in tests

	mu      sync.Mutex
	pending map[int32][]*readReq // requests waiting, by partition; guarded by mu
	reading map[int32]bool       // partitions with a read running; guarded by mu
	closed  bool

	starts, ends shared[map[int32]int64] // listings shared by the callers of offsetsTTL
	ident        shared[wsdest.TopicIdentity]
}

// source is what a Reader needs of Kafka: the topic's identity, its
// offset listings, and fetches of one partition. Its methods are safe
// for concurrent use.
type source interface {
	// identity returns the topic's identity and partition count.
	identity(ctx context.Context) (wsdest.TopicIdentity, int, error)
	// list returns each partition's start offset (listStart), end offset
	// (listEnd), or first offset stamped at or after at (listAfter).
	list(ctx context.Context, which listing, at time.Time) (map[int32]int64, error)
	// fetch returns records of partition p from offset from (from the
	// partition's first record if from was deleted), in offset order, at
	// most max, as soon as any arrive, and next, the offset after the
	// last offset the fetch covered (records and transaction markers);
	// none and next = from when ctx ends first.
	fetch(ctx context.Context, p int32, from int64, max int) (recs []*wsdest.Record, next int64, err error)
	close()
}

// listing names an offset listing of source.list.
type listing uint8

const (
	listStart listing = iota
	listEnd
	listAfter
)

type readReq struct {
	from, to int64
	done     chan Chunk
}

// Chunk is the answer to one Read.
type Chunk struct {
	// Recs are the partition's records from the requested offset on, in
	// offset order, all below the requested end: every record Kafka
	// holds below Next. They start past the requested offset when Kafka
	// no longer holds it (deleted), or holds no record there.
	Recs []*wsdest.Record
	// Next is where to continue; at or past the requested end when the
	// range is done.
	Next int64
	// Err is set when the read failed; Recs is then empty.
	Err error
}

// NewReader returns a reader of Kafka; it does not connect until used.
func NewReader(cfg ReaderConfig) (*Reader, error) {
	cfg.setDefaults()
	src, err := newKafkaSource(cfg)
	if err != nil {
		return nil, err
	}
	return newReader(cfg, src), nil
}

func (cfg *ReaderConfig) setDefaults() {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultReadConcurrency
	}
	if cfg.ChunkRecords <= 0 {
		cfg.ChunkRecords = DefaultChunkRecords
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
}

// newReader returns a reader of src; cfg has its defaults set.
func newReader(cfg ReaderConfig, src source) *Reader {
	return &Reader{
		cfg:     cfg,
		log:     cfg.Logger,
		src:     src,
		pending: make(map[int32][]*readReq),
		reading: make(map[int32]bool),
	}
}

// Close closes every Kafka client. Reads in flight fail.
func (r *Reader) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.src.close()
}

// Identity returns the topic's identity and partition count from a
// metadata request.
func (r *Reader) Identity(ctx context.Context) (wsdest.TopicIdentity, int, error) {
	return r.src.identity(ctx)
}

// StartOffsets returns each partition's first offset still in Kafka (after
// retention and DeleteRecords): a listing shared by the callers of
// offsetsTTL when shared is set (so that a reconnect storm costs one
// request; the log start only moves forward, so a shared listing is never
// past the real one), a fresh one otherwise.
func (r *Reader) StartOffsets(ctx context.Context, shared bool) (map[int32]int64, error) {
	f := func(ctx context.Context) (map[int32]int64, error) {
		return r.src.list(ctx, listStart, time.Time{})
	}
	if shared {
		return r.starts.get(ctx, time.Now().Add(-offsetsTTL), f)
	}
	return f(ctx)
}

// EndOffsets returns each partition's end offset (the next to be written):
// a listing shared by the callers of offsetsTTL when shared is set, a
// fresh one otherwise.
func (r *Reader) EndOffsets(ctx context.Context, shared bool) (map[int32]int64, error) {
	f := func(ctx context.Context) (map[int32]int64, error) {
		return r.src.list(ctx, listEnd, time.Time{})
	}
	if shared {
		return r.ends.get(ctx, time.Now().Add(-offsetsTTL), f)
	}
	return f(ctx)
}

// shared is one answer from Kafka shared by its callers: each asks for
// one requested at or after a moment, and the callers that arrive while a
// request is in flight that started late enough wait for it.
type shared[T any] struct {
	mu     sync.Mutex
	val    T
	ok     bool          // val is an answer; guarded by mu
	at     time.Time     // when the request for val started; guarded by mu
	wait   chan struct{} // closed when the request in flight ends; guarded by mu
	waitAt time.Time     // when it started; guarded by mu
	gen    uint64        // counts forget calls; guarded by mu
}

// get returns an answer of list whose request started at or after
// notBefore.
func (s *shared[T]) get(ctx context.Context, notBefore time.Time, list func(context.Context) (T, error)) (T, error) {
	s.mu.Lock()
	if s.ok && !s.at.Before(notBefore) {
		v := s.val
		s.mu.Unlock()
		return v, nil
	}
	if w := s.wait; w != nil && !s.waitAt.Before(notBefore) {
		s.mu.Unlock()
		select {
		case <-w:
			s.mu.Lock()
			v, ok := s.val, s.ok && !s.at.Before(notBefore)
			s.mu.Unlock()
			if ok {
				return v, nil
			}
			// The shared request failed, or was forgotten: one of our own.
			return list(ctx)
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
	w, start, gen := make(chan struct{}), time.Now(), s.gen
	s.wait, s.waitAt = w, start
	s.mu.Unlock()
	v, err := list(ctx)
	s.mu.Lock()
	if s.wait == w {
		s.wait = nil
	}
	if err == nil && gen == s.gen && (!s.ok || !start.Before(s.at)) {
		s.val, s.ok, s.at = v, true, start
	}
	close(w)
	s.mu.Unlock()
	return v, err
}

// forget drops the answer, and the one in flight when it ends.
func (s *shared[T]) forget() {
	s.mu.Lock()
	s.gen++
	s.ok = false
	s.mu.Unlock()
}

// forget drops the shared listings: the topic was recreated, its offsets
// start again.
func (r *Reader) forget() {
	r.starts.forget()
	r.ends.forget()
	r.ident.forget()
}

// IdentityAfter returns the topic's identity from a metadata request made
// at or after t, shared by the callers that ask at about the same time.
func (r *Reader) IdentityAfter(ctx context.Context, t time.Time) (wsdest.TopicIdentity, error) {
	return r.ident.get(ctx, t, func(ctx context.Context) (wsdest.TopicIdentity, error) {
		id, _, err := r.src.identity(ctx)
		return id, err
	})
}

// OffsetsAfter returns, for each partition, the first offset whose record
// is stamped at or after t (the end offset when there is none).
func (r *Reader) OffsetsAfter(ctx context.Context, t time.Time) (map[int32]int64, error) {
	return r.src.list(ctx, listAfter, t)
}

// Read returns the records of partition p from offset from (or the
// partition's first record, if from was deleted) up to, not including, to:
// at most ChunkRecords of them. Call it again from Chunk.Next until Next
// reaches to.
func (r *Reader) Read(ctx context.Context, p int32, from, to int64) Chunk {
	if from >= to {
		return Chunk{Next: from}
	}
	req := &readReq{from: from, to: to, done: make(chan Chunk, 1)}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Chunk{Next: from, Err: errors.New("history: reader closed")}
	}
	r.pending[p] = append(r.pending[p], req)
	start := !r.reading[p]
	r.reading[p] = true
	r.mu.Unlock()
	if start {
		go r.serve(p)
	}
	select {
	case c := <-req.done:
		return c
	case <-ctx.Done():
		// The answer, when it comes, goes to the buffered channel and is
		// dropped with it.
		return Chunk{Next: from, Err: ctx.Err()}
	}
}

// serve reads partition p for its pending requests, one coalesced read at
// a time, until none is left.
func (r *Reader) serve(p int32) {
	for {
		r.mu.Lock()
		reqs := r.pending[p]
		if len(reqs) == 0 || r.closed {
			delete(r.pending, p)
			delete(r.reading, p)
			r.mu.Unlock()
			for _, q := range reqs {
				q.done <- Chunk{Next: q.from, Err: errors.New("history: reader closed")}
			}
			return
		}
		r.pending[p] = nil
		r.mu.Unlock()

		lo, hi := reqs[0].from, reqs[0].to
		for _, q := range reqs[1:] {
			lo, hi = min(lo, q.from), max(hi, q.to)
		}
		recs, end, err := r.readRange(p, lo, hi)
		var again []*readReq
		for _, q := range reqs {
			switch {
			case err != nil:
				q.done <- Chunk{Next: q.from, Err: err}
			case q.from >= end:
				again = append(again, q) // beyond this read: the next one
			default:
				var mine []*wsdest.Record
				for _, rec := range recs {
					if rec.Offset >= q.from && rec.Offset < q.to {
						mine = append(mine, rec)
					}
				}
				q.done <- Chunk{Recs: mine, Next: min(q.to, end)}
			}
		}
		if len(again) > 0 {
			r.mu.Lock()
			r.pending[p] = append(again, r.pending[p]...)
			r.mu.Unlock()
		}
	}
}

// readRange reads p from lo, up to ChunkRecords records below hi. end is
// the offset below which everything of [lo, hi) was read; a chunk never
// holds a hole: a fetch after its first that answers past where it asked
// ends it there. It fails after
// fetchAttempts silent fetches in a row.
func (r *Reader) readRange(p int32, lo, hi int64) (recs []*wsdest.Record, end int64, err error) {
	end = lo
	silent := 0
	for len(recs) < r.cfg.ChunkRecords && end < hi {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		got, next, err := r.src.fetch(ctx, p, end, r.cfg.ChunkRecords-len(recs))
		cancel()
		if err != nil {
			return nil, lo, fmt.Errorf("history: read %s/%d from %d: %w", r.cfg.Topic, p, end, err)
		}
		if len(got) > 0 && next <= end {
			return nil, lo, fmt.Errorf("history: read %s/%d from %d: Kafka answered from %d (offset out of range: truncated or recreated)", r.cfg.Topic, p, end, got[0].Offset)
		}
		if next <= end {
			if silent++; silent >= fetchAttempts {
				return nil, lo, fmt.Errorf("history: read %s/%d from %d: no answer from Kafka in %v", r.cfg.Topic, p, end, fetchAttempts*fetchTimeout)
			}
			continue
		}
		if len(recs) > 0 && len(got) > 0 && got[0].Offset > end {
			// Answered past where it asked (deleted since the chunk's
			// first fetch, or no record there): the chunk ends before,
			// so that its reader checks the log start from there.
			break
		}
		silent = 0
		for _, rec := range got {
			if rec.Offset < hi {
				recs = append(recs, rec)
			}
		}
		end = next
	}
	return recs, min(end, hi), nil
}
