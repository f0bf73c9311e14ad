package kafka

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// listTimeout bounds one attempt to list the topic's end offsets.
const listTimeout = 5 * time.Second

// pinner assigns partitions when consuming without a group from the end of
// the topic. franz-go's own "start at the end" lists the end offset while
// fetching begins, so a record produced in that instant can be skipped, and
// it starts partitions created later at their end too, skipping what was
// written to them before the next metadata refresh revealed them. Instead:
//
//   - the partitions that exist at start-up are pinned at exact offsets,
//     chosen so that every record stamped at or after start-up, and every
//     record written after the listing, is delivered (see startOffsets);
//   - partitions that appear later are added from their start: all of
//     their records are newer than start-up;
//   - a topic that does not exist at start-up, or that is recreated, is
//     handed to franz-go whole, from its start, for the same reason.
//
// A pinner is owned by the Source's watch goroutine; ready is read by Ready.
type pinner struct {
	client *kgo.Client
	adm    *kadm.Client
	topic  string
	start  time.Time

	whole  bool           // franz-go consumes the whole topic itself
	listed bool           // every partition that existed at start-up is pinned
	pinned map[int32]bool // while listing: partitions already pinned
	next   int32          // once listed: partitions below next are assigned

	ready atomic.Bool // listed or whole: a record produced now is delivered
}

func newPinner(client *kgo.Client, topic string, start time.Time) *pinner {
	return &pinner{client: client, adm: kadm.NewClient(client), topic: topic, start: start, pinned: make(map[int32]bool)}
}

// step makes progress: it lists and pins until every start-up partition is
// pinned, then adds partitions as franz-go's metadata reveals them.
func (p *pinner) step(ctx context.Context) {
	switch {
	case p.whole:
	case !p.listed:
		p.list(ctx)
	default:
		p.addNew()
	}
}

// handOver gives the whole topic to franz-go, from its start. Call it only
// when no partition is pinned (at start-up, or after a purge).
func (p *pinner) handOver() {
	p.client.AddConsumeTopics(p.topic)
	p.whole = true
	p.ready.Store(true)
}

func (p *pinner) list(ctx context.Context) {
	// An error (broker unreachable, some partitions failed) leaves the
	// rest for the next step; what was listed is still good.
	offs, n, err := startOffsets(ctx, p.adm, p.topic, p.start)
	if err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) && len(p.pinned) == 0 {
			p.handOver()
		}
		return
	}
	if n == 0 {
		return
	}
	pins := make(map[int32]kgo.Offset)
	for part, o := range offs {
		if !p.pinned[part] {
			pins[part] = kgo.NewOffset().At(o)
			p.pinned[part] = true
		}
	}
	if len(pins) > 0 {
		p.client.AddConsumePartitions(map[string]map[int32]kgo.Offset{p.topic: pins})
	}
	for part := range n {
		if !p.pinned[part] {
			return
		}
	}
	p.listed, p.next, p.pinned = true, n, nil
	p.ready.Store(true)
}

// startOffsets lists where the records since start begin in each
// partition of topic: the lower of the end offset and (listed after it) the
// first offset stamped at or after start. Every record stamped at or after
// start, and every record written after the call began, is at or after that
// offset: the promise Ready makes. Listing the end first matters: franz-go's
// own AfterMilli lists by time first and falls back to an end listed
// afterwards, which is above a record produced in between.
//
// offs holds the partitions both listings answered; n is the number of
// partitions the end listing saw (0 if it failed). err is
// kerr.UnknownTopicOrPartition (or another topic-level error) when the
// broker does not know the topic; other failures only leave partitions
// out of offs.
func startOffsets(ctx context.Context, adm *kadm.Client, topic string, start time.Time) (offs map[int32]int64, n int32, err error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	ends, _ := adm.ListEndOffsets(ctx, topic)
	parts := ends[topic]
	if o, ok := parts[-1]; ok {
		return nil, 0, o.Err
	}
	if len(parts) == 0 {
		return nil, 0, nil
	}
	// Where the by-time answer is missing (no record stamped since
	// start-up) kadm falls back to an end offset listed later still,
	// which the end listed before is never above.
	after, _ := adm.ListOffsetsAfterMilli(ctx, start.UnixMilli(), topic)
	offs = make(map[int32]int64, len(parts))
	for part, e := range parts {
		a, ok := after[topic][part]
		if e.Err != nil || !ok || a.Err != nil || e.Offset < 0 || a.Offset < 0 {
			continue
		}
		offs[part] = min(e.Offset, a.Offset)
	}
	return offs, int32(len(parts)), nil
}

// addNew adds the partitions franz-go's metadata shows beyond those
// assigned, from their start.
func (p *pinner) addNew() {
	var add map[int32]kgo.Offset
	for {
		leader, _, _ := p.client.PartitionLeader(p.topic, p.next)
		if leader < 0 {
			break
		}
		if add == nil {
			add = make(map[int32]kgo.Offset)
		}
		add[p.next] = kgo.NewOffset().AtStart()
		p.next++
	}
	if add != nil {
		p.client.AddConsumePartitions(map[string]map[int32]kgo.Offset{p.topic: add})
	}
}
