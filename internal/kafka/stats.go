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
	// returned records of that partition. Every partition the Source
	// consumes has an entry as soon as it is known (without a group) or
	// assigned (with one): 0 until its first fetch with records, which
	// comes at once when records are waiting, so 0 is also true then.
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
	for _, p := range s.consumedPartitions() {
		if _, ok := lag[p]; !ok {
			lag[p] = 0
		}
	}
	return Stats{Records: s.consumed.records.Load(), Lag: lag, BrokerUp: s.reach.up.Load()}
}

// consumedPartitions returns the partitions the Source consumes: a group
// member's assigned ones, or else every partition franz-go's metadata
// knows of the topic.
func (s *Source) consumedPartitions() []int32 {
	if s.assigned != nil {
		return s.assigned.partitions()
	}
	var out []int32
	for p := int32(0); ; p++ {
		if leader, _, err := s.client.PartitionLeader(s.cfg.Topic, p); leader < 0 || err != nil {
			return out
		}
		out = append(out, p)
	}
}
