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
// client for metadata and listings, and a pool of at most Concurrency
// consumers for fetches.
type kafkaSource struct {
	topic string
	opts  []kgo.Opt
	base  *kgo.Client // metadata and offset listings
	adm   *kadm.Client

	clients chan *kgo.Client // idle consumers; at most Concurrency exist
	slots   chan struct{}    // one per consumer that may still be created

	closeMu sync.Mutex    // serialises close with client creation
	closed  bool          // guarded by closeMu
	all     []*kgo.Client // every consumer created; guarded by closeMu
}

func newKafkaSource(cfg ReaderConfig) (*kafkaSource, error) {
	base, err := kgo.NewClient(cfg.Opts...)
	if err != nil {
		return nil, fmt.Errorf("history: create Kafka client: %w", err)
	}
	s := &kafkaSource{
		topic:   cfg.Topic,
		opts:    cfg.Opts,
		base:    base,
		adm:     kadm.NewClient(base),
		clients: make(chan *kgo.Client, cfg.Concurrency),
		slots:   make(chan struct{}, cfg.Concurrency),
	}
	for range cfg.Concurrency {
		s.slots <- struct{}{}
	}
	return s, nil
}

func (s *kafkaSource) close() {
	s.closeMu.Lock()
	s.closed = true
	for _, c := range s.all {
		c.Close()
	}
	s.all = nil
	s.closeMu.Unlock()
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
	cl, err := s.consumer()
	if err != nil {
		return nil, from, err
	}
	defer func() {
		if err != nil {
			// A consumer that failed (a recreated topic's old id, a
			// broken connection) is replaced by a fresh one.
			s.drop(cl)
			return
		}
		s.clients <- cl
	}()
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {p: kgo.NewOffset().At(from)}})
	defer cl.RemoveConsumePartitions(map[string][]int32{s.topic: {p}})
	next = from
	for next == from && ctx.Err() == nil {
		fs := cl.PollRecords(ctx, max)
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
	return recs, next, nil
}

// consumer takes an idle pooled consumer, creating one while fewer than
// Concurrency exist, or waits for one.
func (s *kafkaSource) consumer() (*kgo.Client, error) {
	select {
	case c := <-s.clients:
		return c, nil
	default:
	}
	select {
	case c := <-s.clients:
		return c, nil
	case <-s.slots:
		opts := append(append([]kgo.Opt(nil), s.opts...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {}}),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			// Transaction markers tell which offsets a range holds.
			kgo.KeepControlRecords(),
		)
		c, err := kgo.NewClient(opts...)
		if err != nil {
			s.slots <- struct{}{}
			return nil, fmt.Errorf("history: create Kafka consumer: %w", err)
		}
		s.closeMu.Lock()
		defer s.closeMu.Unlock()
		if s.closed {
			c.Close()
			s.slots <- struct{}{}
			return nil, errors.New("history: reader closed")
		}
		s.all = append(s.all, c)
		return c, nil
	}
}

// drop closes a failed consumer and frees its slot.
func (s *kafkaSource) drop(cl *kgo.Client) {
	s.closeMu.Lock()
	for i, c := range s.all {
		if c == cl {
			s.all = append(s.all[:i], s.all[i+1:]...)
			break
		}
	}
	s.closeMu.Unlock()
	cl.Close()
	s.slots <- struct{}{}
}
