package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/kafka"
)

// Defaults of ReaderConfig.
const (
	DefaultReadConcurrency = 4
	DefaultChunkRecords    = 2000
)

// pollTimeout bounds one poll of a catch-up read: a poll that returns
// nothing for this long means the rest of the range holds no records
// (control records, compacted away), since a range never ends past what
// was published.
const pollTimeout = time.Second

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
	cfg  ReaderConfig
	log  *slog.Logger
	base *kgo.Client // metadata and offset listings
	adm  *kadm.Client

	clients chan *kgo.Client // idle consumers; at most Concurrency exist
	slots   chan struct{}    // one per consumer that may still be created

	mu      sync.Mutex
	pending map[int32][]*readReq // requests waiting, by partition; guarded by mu
	reading map[int32]bool       // partitions with a read running; guarded by mu
	closed  bool

	starts, ends shared // listings shared by the callers of offsetsTTL

	closeMu sync.Mutex    // serialises Close with client creation
	all     []*kgo.Client // every consumer created; guarded by closeMu
}

type readReq struct {
	from, to int64
	done     chan Chunk
}

// Chunk is the answer to one Read.
type Chunk struct {
	// Recs are the partition's records from the requested offset on, in
	// offset order, all below the requested end.
	Recs []*wsdest.Record
	// Next is where to continue; at or past the requested end when the
	// range is done.
	Next int64
	// Err is set when the read failed; Recs is then empty.
	Err error
}

// NewReader returns a reader; it does not connect until used.
func NewReader(cfg ReaderConfig) (*Reader, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultReadConcurrency
	}
	if cfg.ChunkRecords <= 0 {
		cfg.ChunkRecords = DefaultChunkRecords
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	base, err := kgo.NewClient(cfg.Opts...)
	if err != nil {
		return nil, fmt.Errorf("history: create Kafka client: %w", err)
	}
	r := &Reader{
		cfg:     cfg,
		log:     cfg.Logger,
		base:    base,
		adm:     kadm.NewClient(base),
		clients: make(chan *kgo.Client, cfg.Concurrency),
		slots:   make(chan struct{}, cfg.Concurrency),
		pending: make(map[int32][]*readReq),
		reading: make(map[int32]bool),
	}
	for range cfg.Concurrency {
		r.slots <- struct{}{}
	}
	return r, nil
}

// Close closes every Kafka client. Reads in flight fail.
func (r *Reader) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.closeMu.Lock()
	for _, c := range r.all {
		c.Close()
	}
	r.all = nil
	r.closeMu.Unlock()
	r.base.Close()
}

// Identity returns the topic's identity and partition count from a
// metadata request.
func (r *Reader) Identity(ctx context.Context) (wsdest.TopicIdentity, int, error) {
	// A request of its own, not kadm's Metadata: that answers from the
	// client's metadata cache, which can hold a deleted topic's id for up
	// to MetadataMinAge after it was recreated, and the Tap asks exactly
	// then (its offsets went backwards).
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(r.cfg.Topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, r.base)
	if err != nil {
		return wsdest.TopicIdentity{}, 0, fmt.Errorf("history: metadata of %s: %w", r.cfg.Topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != r.cfg.Topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return wsdest.TopicIdentity{}, 0, fmt.Errorf("history: metadata of %s: %w", r.cfg.Topic, err)
		}
		return wsdest.NewTopicIdentity(r.cfg.Topic, t.TopicID), len(t.Partitions), nil
	}
	return wsdest.TopicIdentity{}, 0, fmt.Errorf("history: topic %s not in metadata", r.cfg.Topic)
}

// StartOffsets returns each partition's first offset still in Kafka (after
// retention and DeleteRecords). A listing is shared by the callers of
// offsetsTTL, so that a reconnect storm costs one request.
func (r *Reader) StartOffsets(ctx context.Context) (map[int32]int64, error) {
	return r.starts.get(ctx, func(ctx context.Context) (map[int32]int64, error) {
		return r.list(ctx, func(ctx context.Context) (kadm.ListedOffsets, error) {
			return r.adm.ListStartOffsets(ctx, r.cfg.Topic)
		})
	})
}

// EndOffsets returns each partition's end offset (the next to be written):
// a listing shared by the callers of offsetsTTL when shared is set, a
// fresh one otherwise.
func (r *Reader) EndOffsets(ctx context.Context, shared bool) (map[int32]int64, error) {
	f := func(ctx context.Context) (map[int32]int64, error) {
		return r.list(ctx, func(ctx context.Context) (kadm.ListedOffsets, error) {
			return r.adm.ListEndOffsets(ctx, r.cfg.Topic)
		})
	}
	if shared {
		return r.ends.get(ctx, f)
	}
	return f(ctx)
}

// shared is one listing shared by its callers for offsetsTTL: one request
// in flight at a time, the others wait for it.
type shared struct {
	mu   sync.Mutex
	at   time.Time       // when offs was listed; guarded by mu
	offs map[int32]int64 // the last good listing; guarded by mu
	wait chan struct{}   // closed when the listing in flight ends; guarded by mu
}

func (s *shared) get(ctx context.Context, list func(context.Context) (map[int32]int64, error)) (map[int32]int64, error) {
	s.mu.Lock()
	if s.offs != nil && time.Since(s.at) < offsetsTTL {
		o := s.offs
		s.mu.Unlock()
		return o, nil
	}
	if w := s.wait; w != nil {
		s.mu.Unlock()
		select {
		case <-w:
			s.mu.Lock()
			o, fresh := s.offs, s.offs != nil && time.Since(s.at) < offsetsTTL
			s.mu.Unlock()
			if fresh {
				return o, nil
			}
			// The shared listing failed: try one of our own.
			return list(ctx)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	w := make(chan struct{})
	s.wait = w
	s.mu.Unlock()
	offs, err := list(ctx)
	s.mu.Lock()
	s.wait = nil
	if err == nil {
		s.offs, s.at = offs, time.Now()
	}
	close(w)
	s.mu.Unlock()
	return offs, err
}

// OffsetsAfter returns, for each partition, the first offset whose record
// is stamped at or after t (the end offset when there is none).
func (r *Reader) OffsetsAfter(ctx context.Context, t time.Time) (map[int32]int64, error) {
	return r.list(ctx, func(ctx context.Context) (kadm.ListedOffsets, error) {
		return r.adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), r.cfg.Topic)
	})
}

func (r *Reader) list(ctx context.Context, f func(context.Context) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
	lo, err := f(ctx)
	if err != nil && len(lo) == 0 {
		return nil, fmt.Errorf("history: list offsets of %s: %w", r.cfg.Topic, err)
	}
	out := make(map[int32]int64)
	var errs []error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", o.Partition, o.Err))
			return
		}
		out[o.Partition] = o.Offset
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("history: list offsets of %s: %w", r.cfg.Topic, errors.Join(errs...))
	}
	return out, nil
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

// readRange reads p from lo, up to ChunkRecords records below hi, with one
// of the pooled consumers. end is the offset below which everything of
// [lo, hi) was read.
func (r *Reader) readRange(p int32, lo, hi int64) (recs []*wsdest.Record, end int64, err error) {
	cl, err := r.consumer()
	if err != nil {
		return nil, lo, err
	}
	defer func() {
		if err != nil {
			// A consumer that failed (a recreated topic's old id, a
			// broken connection) is replaced by a fresh one.
			r.drop(cl)
			return
		}
		r.clients <- cl
	}()
	topic := r.cfg.Topic
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(lo)}})
	defer cl.RemoveConsumePartitions(map[string][]int32{topic: {p}})
	end = lo
	for len(recs) < r.cfg.ChunkRecords && end < hi {
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
		fs := cl.PollRecords(ctx, r.cfg.ChunkRecords-len(recs))
		timedOut := ctx.Err() != nil
		cancel()
		if fs.IsClientClosed() {
			return nil, lo, errors.New("history: reader closed")
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, e error) {
			if !errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, context.Canceled) {
				ferr = e
			}
		})
		if ferr != nil {
			return nil, lo, fmt.Errorf("history: read %s/%d from %d: %w", topic, p, lo, ferr)
		}
		n := 0
		fs.EachRecord(func(kr *kgo.Record) {
			if kr.Partition != p {
				return
			}
			n++
			end = max(end, kr.Offset+1)
			if kr.Offset >= hi {
				return
			}
			rec := kafka.Record(kr, nil)
			recs = append(recs, &rec)
		})
		if n == 0 && timedOut {
			// Nothing more below hi: what is left of the range holds no
			// records.
			end = hi
		}
	}
	return recs, min(end, hi), nil
}

// consumer takes an idle pooled consumer, creating one while fewer than
// Concurrency exist, or waits for one.
func (r *Reader) consumer() (*kgo.Client, error) {
	select {
	case c := <-r.clients:
		return c, nil
	default:
	}
	select {
	case c := <-r.clients:
		return c, nil
	case <-r.slots:
		opts := append(append([]kgo.Opt(nil), r.cfg.Opts...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.Topic: {}}),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)
		c, err := kgo.NewClient(opts...)
		if err != nil {
			r.slots <- struct{}{}
			return nil, fmt.Errorf("history: create Kafka consumer: %w", err)
		}
		r.closeMu.Lock()
		r.all = append(r.all, c)
		r.closeMu.Unlock()
		return c, nil
	}
}

// drop closes a failed consumer and frees its slot.
func (r *Reader) drop(cl *kgo.Client) {
	r.closeMu.Lock()
	for i, c := range r.all {
		if c == cl {
			r.all = append(r.all[:i], r.all[i+1:]...)
			break
		}
	}
	r.closeMu.Unlock()
	cl.Close()
	r.slots <- struct{}{}
}
