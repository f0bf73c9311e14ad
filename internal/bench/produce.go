package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceTick is how often the producer tops up to its target rate: often
// enough for a steady stream, rarely enough to cost nothing.
const produceTick = 5 * time.Millisecond

// producer writes the benchmark records: seq 0, 1, 2, ... keyed
// "k-<seq mod keys>", at a steady rate. Its counters are safe to read from
// any goroutine.
type producer struct {
	client   *kgo.Client
	keys     [][]byte
	size     int
	rate     float64
	duration time.Duration
	// value builds each record's value; AppendValue unless set before run.
	value func(dst []byte, tsNs, seq int64, size int) []byte

	sent      atomic.Int64   // records handed to the client
	acked     []atomic.Int64 // acknowledged records per key index
	failed    atomic.Int64
	errOnce   sync.Once
	firstErr  atomic.Value // string
	closeOnce sync.Once
}

func newProducer(brokers []string, topic string, rate float64, duration time.Duration, size, keys int) (*producer, error) {
	client, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.AllowAutoTopicCreation(),
		// Latency is what we measure: send each batch as soon as the
		// previous request to its broker completes.
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return nil, fmt.Errorf("bench: kafka producer: %w", err)
	}
	p := &producer{
		client:   client,
		keys:     make([][]byte, keys),
		size:     size,
		rate:     rate,
		duration: duration,
		acked:    make([]atomic.Int64, keys),
		value:    AppendValue,
	}
	for k := range p.keys {
		p.keys[k] = []byte("k-" + strconv.Itoa(k))
	}
	return p, nil
}

// run produces for the configured duration, or until ctx is done. When the
// client cannot keep up (Produce blocks on a full buffer) fewer records go
// out than the rate asks for; the counters tell how many did.
func (p *producer) run(ctx context.Context) {
	total := int64(p.rate * p.duration.Seconds())
	t := time.NewTicker(produceTick)
	defer t.Stop()
	start := time.Now()
	var seq int64
	for seq < total {
		elapsed := time.Since(start)
		due := min(total, int64(p.rate*elapsed.Seconds())+1)
		if elapsed >= p.duration {
			due = total
		}
		for ; seq < due; seq++ {
			if ctx.Err() != nil {
				return
			}
			k := int(seq % int64(len(p.keys)))
			r := &kgo.Record{
				Key:   p.keys[k],
				Value: p.value(make([]byte, 0, max(p.size, 64)), time.Now().UnixNano(), seq, p.size),
			}
			p.sent.Add(1)
			p.client.Produce(ctx, r, p.promise)
		}
		if elapsed >= p.duration {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *producer) promise(r *kgo.Record, err error) {
	if err != nil {
		p.failed.Add(1)
		p.errOnce.Do(func() { p.firstErr.Store(err.Error()) })
		return
	}
	k, _ := strconv.Atoi(string(r.Key[2:]))
	p.acked[k].Add(1)
}

// flush waits for outstanding records until ctx is done.
func (p *producer) flush(ctx context.Context) error {
	if err := p.client.Flush(ctx); err != nil {
		return fmt.Errorf("bench: flush producer: %w", err)
	}
	return nil
}

// produced returns the acknowledged records.
func (p *producer) produced() int64 {
	var n int64
	for i := range p.acked {
		n += p.acked[i].Load()
	}
	return n
}

// expected returns the deliveries the acknowledged records owe the reading
// clients: every record to every reader, or with a key filter, each record
// to the readers of its key.
func (p *producer) expected(reading int, readingByKey []int) int64 {
	if readingByKey == nil {
		return p.produced() * int64(reading)
	}
	var n int64
	for k := range p.acked {
		if k < len(readingByKey) {
			n += p.acked[k].Load() * int64(readingByKey[k])
		}
	}
	return n
}

func (p *producer) firstError() string {
	s, _ := p.firstErr.Load().(string)
	return s
}

// close fails the records still buffered; it is idempotent.
func (p *producer) close() { p.closeOnce.Do(p.client.Close) }
