package kafka

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Stats is a snapshot of what the Source has consumed.
type Stats struct {
	// Records counts the records handed to the sink.
	Records uint64 `json:"records"`
	// Lag is, per partition, the partition's high watermark minus the
	// position after the last record consumed, as of the last fetch that
	// returned records of that partition.
	Lag map[int32]int64 `json:"lag"`
	// BrokerUp reports whether a broker is reachable (see Ready).
	BrokerUp bool `json:"broker_up"`
}

// consumption holds the counters behind Stats. It is updated once per
// fetch, on the Run goroutine, and read by any goroutine.
type consumption struct {
	records atomic.Uint64

	mu  sync.Mutex
	lag map[int32]int64 // guarded by mu
}

func (c *consumption) observe(fetches kgo.Fetches) {
	n := 0
	c.mu.Lock()
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		n += len(p.Records)
		if c.lag == nil {
			c.lag = make(map[int32]int64)
		}
		c.lag[p.Partition] = max(p.HighWatermark-(p.Records[len(p.Records)-1].Offset+1), 0)
	})
	c.mu.Unlock()
	c.records.Add(uint64(n))
}

// Stats returns the Source's counters. It is safe to call from any
// goroutine at any time.
func (s *Source) Stats() Stats {
	s.consumed.mu.Lock()
	lag := maps.Clone(s.consumed.lag)
	s.consumed.mu.Unlock()
	if lag == nil {
		lag = map[int32]int64{}
	}
	return Stats{Records: s.consumed.records.Load(), Lag: lag, BrokerUp: s.reach.up.Load()}
}
