package kafka

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupStart positions a consumer group member's partitions that have no
// committed offset, when starting at the end of the topic. franz-go's own
// start offset for them (AfterMilli) lists by time and, where no record is
// that recent, falls back to the end offset in a second request: a record
// produced between the two requests is skipped, even after Ready. Instead,
// once franz-go has fetched the group's commits, each partition without
// one is set to the offset the pinner would use (see startOffsets).
// Committed offsets are left alone: they win over the start rule, as in any
// group, and autocommit works as usual.
//
// franz-go calls assigned and adjust on its group goroutines, one session
// at a time, assigned first; ready is read by Ready.
type groupStart struct {
	topic string
	start time.Time
	// unset is the start offset franz-go gives the partitions with no
	// commit, and so how adjust recognises them.
	unset kgo.Offset
	retry time.Duration // between listings that left partitions out

	adm atomic.Pointer[kadm.Client] // set by assigned, before adjust runs

	// ready turns true once a session has positioned all its partitions
	// (or had none), and stays true: later sessions start partitions with
	// no commit by the same rule, so nothing produced meanwhile is lost.
	ready atomic.Bool
}

func newGroupStart(topic string, start time.Time, retry time.Duration) *groupStart {
	return &groupStart{topic: topic, start: start, unset: sinceStart(start), retry: retry}
}

// sinceStart is franz-go's start offset for a group member starting at the
// end: the records stamped at or after start. groupStart replaces it with
// exact offsets before fetching begins.
func sinceStart(start time.Time) kgo.Offset {
	return kgo.NewOffset().AfterMilli(start.UnixMilli())
}

// opts hooks g into the group: the client must also consume the topic with
// ConsumeStartOffset(sinceStart(start)), and call g.assigned from its
// OnPartitionsAssigned (groupAssignment's).
func (g *groupStart) opts() []kgo.Opt {
	return []kgo.Opt{kgo.AdjustFetchOffsetsFn(g.adjust)}
}

// groupAssignment keeps the partitions of the topic the group assigned to
// this member, for the lag series (Stats); franz-go calls its hooks on its
// group goroutines.
type groupAssignment struct {
	topic string
	start *groupStart // nil unless positioning partitions itself

	// joined turns true at the first session's assignment (even of no
	// partition) and stays true: read by Conditions.
	joined atomic.Bool

	mu    sync.Mutex
	parts map[int32]bool // guarded by mu
}

// opts hooks a into the group. Not OnPartitionsRevoked: setting it would
// replace franz-go's commit on revoke, so a partition moved to another
// member in a rebalance keeps its series here (with its last value).
func (a *groupAssignment) opts() []kgo.Opt {
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(a.assigned),
		kgo.OnPartitionsLost(a.lost),
	}
}

func (a *groupAssignment) assigned(ctx context.Context, cl *kgo.Client, added map[string][]int32) {
	a.mu.Lock()
	if a.parts == nil {
		a.parts = make(map[int32]bool)
	}
	for _, p := range added[a.topic] {
		a.parts[p] = true
	}
	a.mu.Unlock()
	a.joined.Store(true)
	if a.start != nil {
		a.start.assigned(ctx, cl, added)
	}
}

func (a *groupAssignment) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	a.mu.Lock()
	for _, p := range lost[a.topic] {
		delete(a.parts, p)
	}
	a.mu.Unlock()
}

// partitions returns the partitions assigned now.
func (a *groupAssignment) partitions() []int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]int32, 0, len(a.parts))
	for p := range a.parts {
		out = append(out, p)
	}
	return out
}

// assigned is called at the start of every group session, even with
// nothing added. With nothing added, the member either has no partition or
// keeps ones positioned in an earlier session. (A rebalance that cuts the
// first session's offset fetch short and leaves the member its partitions
// would make Ready true a moment before they are positioned; records
// stamped since start-up still arrive.)
func (g *groupStart) assigned(_ context.Context, cl *kgo.Client, added map[string][]int32) {
	g.adm.Store(kadm.NewClient(cl))
	if len(added[g.topic]) == 0 {
		g.ready.Store(true)
	}
}

// adjust replaces the start offset of the partitions with no commit. It
// lists until every such partition is positioned, so an unreachable broker
// holds their consumption back rather than letting franz-go start them its
// own way; ctx ends when the session is revoked or the client closes.
func (g *groupStart) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	parts := offsets[g.topic]
	var need []int32
	for part, o := range parts {
		if o == g.unset {
			need = append(need, part)
		}
	}
	for len(need) > 0 {
		offs, _, _ := startOffsets(ctx, g.adm.Load(), g.topic, g.start)
		need = slices.DeleteFunc(need, func(part int32) bool {
			o, ok := offs[part]
			if ok {
				parts[part] = kgo.NewOffset().At(o)
			}
			return ok
		})
		if len(need) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(g.retry):
		}
	}
	g.ready.Store(true)
	return offsets, nil
}
