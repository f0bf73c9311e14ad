package history

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/kafka"
)

// kafkaSource is the Reader's source on a real cluster: one franz-go
// client for metadata and listings, and at most Concurrency consumers for
// fetches. A consumer stays assigned to the partition and offset where
// its last fetch ended, so that the next read of that partition goes on
// with what it has fetched meanwhile instead of starting a fetch session
// again.
type kafkaSource struct {
	topic string
	opts  []kgo.Opt
	base  *kgo.Client // metadata and offset listings
	adm   *kadm.Client

	slots chan struct{} // one per fetch that may run; Concurrency in all

	mu     sync.Mutex  // guards idle, all and closed
	idle   []*consumer // consumers not fetching
	all    []*consumer // every consumer created
	closed bool
}

// consumer is a pooled franz-go consumer and where it is assigned.
type consumer struct {
	cl       *kgo.Client
	assigned bool
	p        int32
	next     int64
}

// readerFetchBytes bounds what one consumer fetches ahead.
const readerFetchBytes = 8 << 20

func newKafkaSource(cfg ReaderConfig) (*kafkaSource, error) {
	base, err := kgo.NewClient(cfg.Opts...)
	if err != nil {
		return nil, fmt.Errorf("history: create Kafka client: %w", err)
	}
	s := &kafkaSource{
		topic: cfg.Topic,
		opts:  cfg.Opts,
		base:  base,
		adm:   kadm.NewClient(base),
		slots: make(chan struct{}, cfg.Concurrency),
	}
	for range cfg.Concurrency {
		s.slots <- struct{}{}
	}
	return s, nil
}

func (s *kafkaSource) close() {
	s.mu.Lock()
	s.closed = true
	all := s.all
	s.all, s.idle = nil, nil
	s.mu.Unlock()
	for _, c := range all {
		c.cl.Close()
	}
	s.base.Close()
}

func (s *kafkaSource) identity(ctx context.Context) (wsdest.TopicIdentity, int, error) {
	// A request of its own, not kadm's Metadata: that answers from the
	// client's metadata cache, which can hold a deleted topic's id for up
	// to MetadataMinAge after it was recreated, and the Tap asks exactly
	// then (its offsets went backwards).
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(s.topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, s.base)
	if err != nil {
		return wsdest.TopicIdentity{}, 0, fmt.Errorf("history: metadata of %s: %w", s.topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != s.topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return wsdest.TopicIdentity{}, 0, fmt.Errorf("history: metadata of %s: %w", s.topic, err)
		}
		return wsdest.NewTopicIdentity(s.topic, t.TopicID), len(t.Partitions), nil
	}
	return wsdest.TopicIdentity{}, 0, fmt.Errorf("history: topic %s not in metadata", s.topic)
}

func (s *kafkaSource) list(ctx context.Context, which listing, at time.Time) (map[int32]int64, error) {
	var lo kadm.ListedOffsets
	var err error
	switch which {
	case listStart:
		lo, err = s.adm.ListStartOffsets(ctx, s.topic)
	case listEnd:
		lo, err = s.adm.ListEndOffsets(ctx, s.topic)
	default:
		lo, err = s.adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), s.topic)
	}
	if err != nil && len(lo) == 0 {
		return nil, fmt.Errorf("history: list offsets of %s: %w", s.topic, err)
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
		return nil, fmt.Errorf("history: list offsets of %s: %w", s.topic, errors.Join(errs...))
	}
	return out, nil
}

func (s *kafkaSource) fetch(ctx context.Context, p int32, from int64, max int) (recs []*wsdest.Record, next int64, err error) {
	select {
	case <-s.slots:
	case <-ctx.Done():
		return nil, from, nil
	}
	defer func() { s.slots <- struct{}{} }()
	c, err := s.take(p, from)
	if err != nil {
		return nil, from, err
	}
	defer func() { s.put(c, err) }()
	if !c.assigned || c.p != p || c.next != from {
		if c.assigned {
			c.cl.RemoveConsumePartitions(map[string][]int32{s.topic: {c.p}})
		}
		c.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {p: kgo.NewOffset().At(from)}})
		c.assigned, c.p = true, p
	}
	next = from
	for next == from && ctx.Err() == nil {
		fs := c.cl.PollRecords(ctx, max)
		if fs.IsClientClosed() {
			return nil, from, errors.New("history: reader closed")
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, e error) {
			if !errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, context.Canceled) {
				ferr = e
			}
		})
		if ferr != nil {
			return nil, from, ferr
		}
		fs.EachRecord(func(kr *kgo.Record) {
			if kr.Partition != p || kr.Offset < from {
				return
			}
			next = kr.Offset + 1
			if kr.Attrs.IsControl() {
				return // a transaction marker: it holds an offset, no record
			}
			rec := kafka.Record(kr, nil)
			recs = append(recs, &rec)
		})
	}
	c.next = next
	return recs, next, nil
}

// take returns an idle consumer, one assigned at p and from if there is
// one, or a new one.
func (s *kafkaSource) take(p int32, from int64) (*consumer, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("history: reader closed")
	}
	pick := len(s.idle) - 1
	for i, c := range s.idle {
		if c.assigned && c.p == p && c.next == from {
			pick = i
			break
		}
	}
	if pick >= 0 {
		c := s.idle[pick]
		s.idle = append(s.idle[:pick], s.idle[pick+1:]...)
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	opts := append(append([]kgo.Opt(nil), s.opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Transaction markers tell which offsets a range holds.
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(readerFetchBytes),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("history: create Kafka consumer: %w", err)
	}
	c := &consumer{cl: cl}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		cl.Close()
		return nil, errors.New("history: reader closed")
	}
	s.all = append(s.all, c)
	return c, nil
}

// put gives c back after a fetch; a consumer that failed (a recreated
// topic's old id, a broken connection) is closed instead.
func (s *kafkaSource) put(c *consumer, err error) {
	s.mu.Lock()
	if err == nil && !s.closed {
		s.idle = append(s.idle, c)
		s.mu.Unlock()
		return
	}
	for i, x := range s.all {
		if x == c {
			s.all = append(s.all[:i], s.all[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	c.cl.Close()
}
