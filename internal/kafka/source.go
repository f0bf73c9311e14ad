package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/ratelog"
)

const (
	// errorLogEvery is how often one kind of fetch error is logged at most.
	errorLogEvery = time.Minute
	// watchEvery is how often Run checks whether the topic exists and
	// whether partitions were added.
	watchEvery = 250 * time.Millisecond
)

// Source consumes the configured topic. Create it with NewSource, call Run
// once, and Close it after Run returns. Ready may be called from any
// goroutine at any time.
type Source struct {
	cfg    Config
	logger *slog.Logger
	client *kgo.Client
	reach  *reach

	closeOnce sync.Once
	// recreated is signalled by franz-go's logger (on a client goroutine)
	// and drained by Run's watcher.
	recreated chan struct{}
	// pins assigns partitions when Config.pinned; nil otherwise. Owned by
	// Run's watcher, except pins.ready.
	pins *pinner
	// group positions a group member's partitions that have no commit
	// when Config.groupLatest; nil otherwise. Called by franz-go's group
	// goroutines; group.ready is read by Ready.
	group *groupStart
	// assigned keeps a group member's partitions; nil without a group.
	assigned *groupAssignment

	// errLog lets one fetch error line of a kind through every
	// errorLogEvery; its keys leave the partition out, so one error
	// hitting every partition is one line.
	errLog   *ratelog.Limiter
	consumed consumption
	// topicMissing is set by Run's watcher while the broker does not know
	// the topic; read by Conditions.
	topicMissing atomic.Bool
}

// NewSource creates the franz-go client for cfg; it does not wait for the
// broker. An error means the configuration itself is unusable. Start-up
// time, for "start at the end of the topic", is the time of this call:
// records stamped after it are delivered even if Run starts later.
func NewSource(cfg Config, logger *slog.Logger) (*Source, error) {
	r := newReach(logger)
	start := time.Now()
	opts, err := cfg.clientOpts(start)
	if err != nil {
		return nil, err
	}
	recreated := make(chan struct{}, 1)
	opts = append(opts,
		kgo.WithHooks(r),
		kgo.WithLogger(kgoLogger{l: logger, topic: cfg.Topic, recreated: recreated}),
	)
	var group *groupStart
	if cfg.groupLatest() {
		group = newGroupStart(cfg.Topic, start, orDefault(cfg.watchEvery, watchEvery))
		opts = append(opts, group.opts()...)
	}
	var assignment *groupAssignment
	if cfg.Group != "" {
		assignment = &groupAssignment{topic: cfg.Topic, start: group}
		opts = append(opts, assignment.opts()...)
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: create client: %w", err)
	}
	src := &Source{
		cfg:       cfg,
		logger:    logger,
		client:    client,
		reach:     r,
		recreated: recreated,
		group:     group,
		assigned:  assignment,
		errLog:    ratelog.New(orDefault(cfg.errorLogEvery, errorLogEvery), 1),
	}
	if cfg.pinned() {
		src.pins = newPinner(client, cfg.Topic, start)
	}
	return src, nil
}

// Run consumes until ctx is done, calling sink from this goroutine with the
// records of each fetch: grouped by partition in ascending partition order,
// each partition's records in offset order. sink owns the slice and the
// records; they are never modified afterwards. Broker outages and fetch
// errors are logged, not returned. Run returns nil when ctx is cancelled or
// the Source is closed. Call it once.
func (s *Source) Run(ctx context.Context, sink func(recs []*wsdest.Record)) error {
	ctx, cancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { s.watch(ctx) })
	bg.Go(func() { s.health(ctx) })
	defer func() {
		cancel()
		bg.Wait()
	}()

	for {
		fetches := s.client.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		s.handleErrors(fetches)
		s.consumed.observe(fetches)
		if recs := toRecords(fetches); len(recs) > 0 {
			sink(recs)
		}
	}
}

// watch runs beside Run. It assigns partitions (see pinner), reports a
// missing topic (which franz-go treats as retryable and keeps to itself)
// and re-subscribes when the topic was deleted and recreated, which
// franz-go refuses to follow on its own.
func (s *Source) watch(ctx context.Context) {
	if s.pins != nil {
		s.pins.step(ctx)
	}
	tick := time.NewTicker(orDefault(s.cfg.watchEvery, watchEvery))
	defer tick.Stop()
	missing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.recreated:
			// A broker that restarted without its data (the dev broker,
			// a test cluster) recreates the topic under a new id. Every
			// record of the new topic is newer than start-up, so it is
			// read from its beginning.
			s.logger.Warn("kafka topic was recreated; consuming the new topic", "topic", s.cfg.Topic)
			s.client.PurgeTopicsFromConsuming(s.cfg.Topic)
			if s.pins != nil {
				s.pins.handOver()
			} else {
				s.client.AddConsumeTopics(s.cfg.Topic)
			}
		case <-tick.C:
			if s.pins != nil {
				s.pins.step(ctx)
			}
			_, _, err := s.client.PartitionLeader(s.cfg.Topic, 0)
			switch {
			case !missing && errors.Is(err, kerr.UnknownTopicOrPartition):
				missing = true
				s.topicMissing.Store(true)
				s.logger.Warn(fmt.Sprintf("kafka topic %s does not exist yet; waiting", s.cfg.Topic), "topic", s.cfg.Topic)
			case missing && s.partitionsKnown():
				missing = false
				s.topicMissing.Store(false)
				s.logger.Info(fmt.Sprintf("kafka topic %s exists now", s.cfg.Topic), "topic", s.cfg.Topic)
			}
		}
	}
}

// Ready reports whether the topic's partitions are known and a broker is
// reachable. It is false until the first metadata arrives, while the topic
// does not exist, and during broker outages. Starting at the end, it also
// waits until the start offsets are fixed, so that a record produced once
// Ready is true is delivered. With a group, that is once the member has
// joined and positioned the partitions it was assigned (none is fine); the
// record is delivered by whichever member owns its partition, and later
// rebalances do not make Ready false. A group member of any start rule
// waits for its first assignment. Conditions says which part is missing.
func (s *Source) Ready() bool { return len(s.Conditions()) == 0 }

// Close leaves the consumer group (committing its offsets) and closes the
// connections. Call it after Run has returned; it is safe to call twice.
func (s *Source) Close() {
	s.closeOnce.Do(func() {
		s.reach.closing.Store(true)
		s.client.Close()
	})
}

// partitionsKnown reports whether metadata for the topic has loaded
// partitions: partition 0 always exists and has a leader then.
func (s *Source) partitionsKnown() bool {
	leader, _, err := s.client.PartitionLeader(s.cfg.Topic, 0)
	return leader >= 0 && err == nil
}

func (s *Source) handleErrors(fetches kgo.Fetches) {
	fetches.EachError(func(topic string, partition int32, err error) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, kgo.ErrClientClosed):
		default:
			var loss *kgo.ErrDataLoss
			if errors.As(err, &loss) {
				if n, ok := s.errLog.Allow("data loss"); ok {
					s.logger.Warn("kafka broker lost data; consumer offset reset",
						"topic", topic, "partition", partition, "consumed_to", loss.ConsumedTo, "reset_to", loss.ResetTo, "suppressed", n)
				}
				return
			}
			if n, ok := s.errLog.Allow(err.Error()); ok {
				s.logger.Warn("kafka fetch error", "topic", topic, "partition", partition, "err", err, "suppressed", n)
			}
		}
	})
}

// toRecords converts a poll's records. One allocation each holds all
// Records, all pointers and all headers.
func toRecords(fetches kgo.Fetches) []*wsdest.Record {
	n := fetches.NumRecords()
	if n == 0 {
		return nil
	}
	var parts []kgo.FetchTopicPartition
	nh := 0
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		parts = append(parts, p)
		for _, r := range p.Records {
			nh += len(r.Headers)
		}
	})
	if len(parts) > 1 {
		slices.SortStableFunc(parts, func(a, b kgo.FetchTopicPartition) int {
			return int(a.Partition) - int(b.Partition)
		})
	}
	recs := make([]wsdest.Record, 0, n)
	ptrs := make([]*wsdest.Record, 0, n)
	hdrs := make([]wsdest.Header, 0, nh)
	for _, p := range parts {
		for _, r := range p.Records {
			recs = append(recs, Record(r, &hdrs))
			ptrs = append(ptrs, &recs[len(recs)-1])
		}
	}
	return ptrs
}

// Record converts kr, sharing its topic, key, value and header bytes. Its
// headers are appended to *hdrs, so that the records of one fetch can share
// one array; hdrs nil gives them an array of their own.
func Record(kr *kgo.Record, hdrs *[]wsdest.Header) wsdest.Record {
	rec := wsdest.Record{
		Topic:     kr.Topic,
		Partition: kr.Partition,
		Offset:    kr.Offset,
		Timestamp: kr.Timestamp,
		Key:       kr.Key,
		Value:     kr.Value,
	}
	if len(kr.Headers) > 0 {
		var own []wsdest.Header
		if hdrs == nil {
			own = make([]wsdest.Header, 0, len(kr.Headers))
			hdrs = &own
		}
		start := len(*hdrs)
		for _, kh := range kr.Headers {
			*hdrs = append(*hdrs, wsdest.Header{Key: kh.Key, Value: kh.Value})
		}
		rec.Headers = (*hdrs)[start:len(*hdrs):len(*hdrs)]
	}
	return rec
}

// kgoLogger sends franz-go's own log lines to slog at debug level: the
// source logs what operators need (outages, errors) itself, once.
//
// It also watches for the one franz-go warning that needs action: the topic
// was deleted and recreated (it has a new id), which franz-go reports only
// in its log and then fails with UNKNOWN_TOPIC_ID until the topic is purged
// and added again. Log runs on franz-go's metadata goroutine, where purging
// would deadlock, so it only signals Run's watcher.
type kgoLogger struct {
	l         *slog.Logger
	topic     string
	recreated chan<- struct{}
}

// recreatedMsg starts franz-go's warning about a recreated topic; a test
// with a broker restarted empty fails if a franz-go upgrade changes it.
const recreatedMsg = "metadata has a new ID for a topic we already hold"

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level == kgo.LogLevelWarn && strings.HasPrefix(msg, recreatedMsg) && k.forTopic(keyvals) {
		select {
		case k.recreated <- struct{}{}:
		default: // already signalled
		}
	}
	k.l.Debug("franz-go: "+msg, keyvals...)
}

func (k kgoLogger) forTopic(keyvals []any) bool {
	for i := 0; i+1 < len(keyvals); i += 2 {
		if keyvals[i] == "topic" {
			return keyvals[i+1] == k.topic
		}
	}
	return false
}
