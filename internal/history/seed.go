package history

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/ratelog"
	"github.com/wsdest/wsdest/internal/snapshot"
)

// DefaultSeedProgress is how often seeding writes a progress line.
const DefaultSeedProgress = 5 * time.Second

// DefaultSeedTimeout bounds seeding (SNAPSHOT_SEED_TIMEOUT).
const DefaultSeedTimeout = 5 * time.Minute

// seedRetryLines is how often a failing seeding step is logged (the
// retries between are counted in the next line).
const seedRetryLines = 30 * time.Second

// seedPartitions bounds the partitions seeding reads at once (each takes
// one of the Reader's consumers, which catch-ups share).
const seedPartitions = 2

// SeedConfig configures Seed.
type SeedConfig struct {
	Tap    *Tap
	Reader *Reader
	Table  *snapshot.Table
	// Encoder builds the seeded messages; one of its own keeps the live
	// encoder's counters to the live stream.
	Encoder *encode.Encoder
	// Since: the records stamped at or after it are read; zero reads
	// everything Kafka holds (SNAPSHOT_LOOKBACK=earliest).
	Since time.Time
	// Progress is how often a progress line is written. Default
	// DefaultSeedProgress.
	Progress time.Duration
	// Timeout bounds seeding, from the call: past it, the table is
	// marked seeded with what was read so far, and a warning says so.
	// Default DefaultSeedTimeout.
	Timeout time.Duration
	// Logger receives the progress lines. Default slog.Default().
	Logger *slog.Logger
}

// Seed fills the table from Kafka at start-up (the table must be marked
// with Table.StartSeeding before the publisher starts): every partition
// from the first record stamped at or after cfg.Since (or the first Kafka
// holds) up to the publisher's position once its start positions are
// known. So every seeded record is below any snapshot point: a snapshot
// never holds a record that its catch-up would follow with older ones.
// What the publisher puts meanwhile is newer, and seeding never replaces
// it (Table.Seed). It holds one read (ReaderConfig.ChunkRecords
// records) per partition at a time beside the table, retries a failed
// read every second (logging it at most every 30 s), writes a progress
// line every cfg.Progress from the start, and marks the table seeded
// (Table.Seeded) when done, or when cfg.Timeout has passed (a warning
// then says how far it got: the table serves what was read). It returns
// ctx's error if ctx ends first.
func Seed(ctx context.Context, cfg SeedConfig) error {
	if cfg.Progress <= 0 {
		cfg.Progress = DefaultSeedProgress
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSeedTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &seeder{cfg: cfg, log: cfg.Logger, start: time.Now(), lines: ratelog.New(seedRetryLines, 1)}
	stop := s.progress(ctx)
	defer stop()
	sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	err := s.seed(sctx)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil && sctx.Err() != nil:
		cfg.Table.Seeded()
		s.log.Warn("snapshot: seeding from Kafka did not finish in time (SNAPSHOT_SEED_TIMEOUT); the table serves what was read",
			"timeout", cfg.Timeout, "records", s.records.Load(), "keys", cfg.Table.Stats().Keys,
			"partitions_done", s.done.Load(), "partitions", s.parts.Load())
		return nil
	}
	return err
}

// seed reads every partition's range into the table and marks it seeded.
func (s *seeder) seed(ctx context.Context) error {
	cfg := s.cfg
	if err := cfg.Tap.waitReady(ctx); err != nil {
		return err
	}
	from, to, err := s.ranges(ctx)
	if err != nil {
		return err
	}
	s.parts.Store(int64(len(to)))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(seedPartitions)
	parts := make([]int32, 0, len(to))
	for p := range to {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		g.Go(func() error { return s.partition(gctx, p, from[p], to[p]) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	cfg.Table.Seeded()
	st := cfg.Table.Stats()
	s.log.Info("snapshot: table seeded from Kafka", "records", s.records.Load(), "keys", st.Keys,
		"partitions", len(to), "took", time.Since(s.start).Round(time.Millisecond))
	return nil
}

type seeder struct {
	cfg   SeedConfig
	log   *slog.Logger
	start time.Time
	lines *ratelog.Limiter // the retry warnings

	records atomic.Int64 // records read
	done    atomic.Int64 // partitions done
	parts   atomic.Int64 // partitions to read, once listed
}

// ranges lists, retrying every second, where each partition's seeding
// starts and ends.
func (s *seeder) ranges(ctx context.Context) (from, to map[int32]int64, err error) {
	rd := s.cfg.Reader
	for {
		if s.cfg.Since.IsZero() {
			from, err = rd.StartOffsets(ctx, false)
		} else {
			from, err = rd.OffsetsAfter(ctx, s.cfg.Since)
		}
		if err == nil {
			return from, s.publishedOffsets(), nil
		}
		if !s.retry(ctx, "list", err) {
			return nil, nil, ctx.Err()
		}
	}
}

// publishedOffsets returns, for each partition the publisher has a
// position in, that position: seeding reads below it, so that every
// seeded record is older than any snapshot point (what follows, the
// publisher puts in the table as it publishes).
func (s *seeder) publishedOffsets() map[int32]int64 {
	pub := s.cfg.Tap.Published()
	to := make(map[int32]int64, len(pub.Offsets))
	for p := range int32(len(pub.Offsets)) {
		if o, _ := pub.Next(p); o >= 0 {
			to[p] = o
		}
	}
	return to
}

// retry logs a failed step (at most every 30 s a step, with the count of
// the failures not logged) and waits a second; false when ctx ended.
func (s *seeder) retry(ctx context.Context, step string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if suppressed, ok := s.lines.Allow(step); ok {
		s.log.Warn("snapshot: seeding from Kafka failed; retrying", "step", step, "err", err, "not_logged", suppressed)
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Second):
		return true
	}
}

// partition reads [from, to) of p into the table.
func (s *seeder) partition(ctx context.Context, p int32, from, to int64) error {
	defer s.done.Add(1)
	var msgs []*message.Message
	for from < to {
		ch := s.cfg.Reader.Read(ctx, p, from, to)
		if ch.Err != nil {
			if !s.retry(ctx, "read", ch.Err) {
				return ctx.Err()
			}
			continue
		}
		for _, rec := range ch.Recs {
			msgs = s.put(msgs[:0], rec)
		}
		clear(msgs)
		s.records.Add(int64(len(ch.Recs)))
		s.cfg.Table.Log()
		from = ch.Next
	}
	return nil
}

// put seeds the table with rec, whose messages it encodes into dst.
func (s *seeder) put(dst []*message.Message, rec *wsdest.Record) []*message.Message {
	tbl := s.cfg.Table
	switch {
	case rec.Key == nil:
		return dst
	case rec.Value == nil:
		tbl.SeedDelete(rec.Key, rec.Partition, rec.Offset)
		return dst
	}
	dst = s.cfg.Encoder.EncodeKept(dst, rec, [message.NumShapes]bool{}, nil)
	if len(dst) == 0 {
		return dst
	}
	// The key is a slice of the fetch's buffer: a kept message must not
	// keep that alive.
	key := bytes.Clone(rec.Key)
	for _, m := range dst {
		m.Key = key
	}
	tbl.Seed(snapshot.Latest(dst))
	return dst
}

// progress writes a progress line every cfg.Progress until stop is
// called (partitions 0 until they are listed).
func (s *seeder) progress(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(s.cfg.Progress)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.log.Info("snapshot: seeding the table from Kafka", "records", s.records.Load(),
					"keys", s.cfg.Table.Stats().Keys, "partitions_done", s.done.Load(), "partitions", s.parts.Load())
			}
		}
	}()
	return func() { cancel(); <-done }
}
