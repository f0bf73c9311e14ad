package history

// The deterministic simulation of the resume path: the real Store, Tap,
// Reader (with a stand-in for Kafka behind its source seam), Resumer and
// hub, driven by a seeded random schedule on testing/synctest's fake
// clock, and an oracle that checks every client's stream against what
// the stand-in Kafka holds.
//
//	go test ./internal/history -run TestSimulation                    # the CI seeds
//	go test ./internal/history -run TestSimulation -sim.seeds=1000000 # more
//	go test ./internal/history -run TestSimulation -sim.seed=42 -v    # one seed, with its trace

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/snapshot"
	"github.com/wsdest/wsdest/internal/wsframe"
)

var (
	simSeeds = flag.Int("sim.seeds", 0, "number of simulation seeds to run (default: the CI count, fewer with -short)")
	simSeed  = flag.Int64("sim.seed", -1, "run only this simulation seed, with its trace")
	simFirst = flag.Int64("sim.first", 1, "first simulation seed")
	simOff   = flag.String("sim.off", "", "comma-separated events the simulation leaves out: slow (fetches past the poll timeout), fail (failing fetches), delete, recreate, grow (partitions added), evict (a history that evicts), snapshot (clients that start with one)")
)

const simVerbose = false

// simHas reports whether the simulation includes event e (see -sim.off).
func simHas(e string) bool {
	for _, o := range strings.Split(*simOff, ",") {
		if o == e {
			return false
		}
	}
	return true
}

// ciSeeds is how many seeds TestSimulation runs by default.
const ciSeeds = 450

func TestSimulation(t *testing.T) {
	if *simSeed >= 0 {
		t.Run(fmt.Sprint(*simSeed), func(t *testing.T) { simulate(t, *simSeed, true) })
		return
	}
	n := *simSeeds
	if n == 0 {
		n = ciSeeds
		if testing.Short() {
			n = ciSeeds / 10
		}
	}
	start := time.Now()
	t.Run("seeds", func(t *testing.T) {
		for seed := *simFirst; seed < *simFirst+int64(n); seed++ {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				if simFailures.Load() >= 5 {
					t.Skip("five seeds failed already")
				}
				simulate(t, seed, false)
			})
		}
	})
	t.Logf("%d seeds from %d in %v", n, *simFirst, time.Since(start).Round(time.Millisecond))
}

var simFailures atomic.Int64

// simulate runs one seed's schedule in a synctest bubble and fails t with
// the first violation the oracle found, with the command that reproduces
// it. With trace, t gets the run's trace.
func simulate(t *testing.T, seed int64, trace bool) {
	synctest.Test(t, func(t *testing.T) {
		var logf func(string, ...any)
		if trace {
			logf = t.Logf
		}
		if err := runSim(seed, logf); err != nil {
			simFailures.Add(1)
			t.Errorf("seed %d: %v\nreproduce: go test ./internal/history -run 'TestSimulation' -sim.seed=%d -v", seed, err, seed)
		}
	})
}

// Parameters of a run; the seed picks the rest.
const (
	simDuration   = 8 * time.Second  // records produced, clients churning
	simSettle     = 60 * time.Second // then every client must catch up within this
	simPartitions = 3
)

func runSim(seed int64, logf func(string, ...any)) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	epoch := time.Now() // the bubble's clock starts at the same time for every seed
	trace := func(format string, args ...any) {
		if logf != nil {
			logf("%8.3fs "+format, append([]any{time.Since(epoch).Seconds()}, args...)...)
		}
	}
	k := newFakeKafka(seed, simPartitions)
	k.trace = trace
	log := slog.New(slog.DiscardHandler)
	cfg := ReaderConfig{Topic: "sim", Concurrency: 1 + rng.IntN(3), ChunkRecords: 20 + rng.IntN(200), Logger: log}
	cfg.setDefaults()
	rd := newReader(cfg, k)
	defer rd.Close()
	enc := encode.New(encode.Options{})
	var store *Store
	if rng.IntN(8) != 0 {
		max := int64(2<<10 + rng.IntN(32<<10))
		if !simHas("evict") {
			max = 1 << 40
		}
		store = NewStore(StoreConfig{MaxBytes: max})
	}
	table := snapshot.New(snapshot.Config{Logger: log})
	tap := NewTap(TapConfig{Encoder: enc, Store: store, Table: table, Reader: rd, Since: time.Now(), Logger: log})
	h := hub.New(hub.Config{MaxQueueBytes: 16<<10 + rng.IntN(256<<10), WriteTimeout: time.Minute, PingInterval: -1, CloseGrace: time.Second, Logger: log})
	res := NewResumer(ResumerConfig{Tap: tap, Store: store, Table: table, Reader: rd, Encoder: enc, Concurrency: 1 + rng.IntN(8), Logger: log})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = tap.Run(ctx) })
	wg.Go(func() { _ = h.Run(ctx) })

	trace("config: store %v, reader %+v, hub queue bound and resumer drawn from the seed", store != nil, cfg.Concurrency)
	sim := &sim{k: k, h: h, tap: tap, store: store, res: res, trace: trace, epoch: epoch}
	// The producer, the broker's own events and the publisher.
	stopProduce := make(chan struct{})
	produced := make(chan struct{})
	wg.Go(func() {
		defer close(produced)
		k.produceLoop(ctx, rand.New(rand.NewPCG(uint64(seed), 2)), stopProduce)
	})
	wg.Go(func() { sim.publishLoop(ctx) })
	// Records before any client arrives.
	time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)

	nclients := 2 + rng.IntN(2)
	clients := make([]*simClient, nclients)
	var cwg sync.WaitGroup
	deadline := time.Now().Add(simDuration)
	for i := range clients {
		c := &simClient{sim: sim, id: i, rng: rand.New(rand.NewPCG(uint64(seed), uint64(10+i))),
			snapRng: rand.New(rand.NewPCG(uint64(seed), uint64(100+i)))}
		clients[i] = c
		cwg.Go(func() { c.run(ctx, deadline) })
	}
	time.Sleep(time.Until(deadline))
	close(stopProduce)
	<-produced
	// A record in every partition, after the broker's last event, so
	// that the publisher notices a recreation, or records deleted before
	// it read them, just before the end (it can know of them only by the
	// records that follow).
	k.produceOne()
	cwg.Wait()
	err := firstErr(clients)
	if st := res.Stats(); err == nil && st.Holes != 0 {
		err = fmt.Errorf("%d catch-ups failed on a hole", st.Holes)
	}
	sim.stopPublish.Store(true)
	cancel()
	for _, c := range clients {
		c.closeConn()
	}
	rd.Close()
	// Every goroutine of the bubble ends: reads of the closed reader fail,
	// the hub's close timers fire.
	time.Sleep(time.Minute)
	return err
}

func firstErr(cs []*simClient) error {
	for _, c := range cs {
		if c.err != nil {
			return fmt.Errorf("client %d: %w", c.id, c.err)
		}
	}
	return nil
}

// sim is what the clients share.
type sim struct {
	k           *fakeKafka
	h           *hub.Hub
	tap         *Tap
	store       *Store
	res         *Resumer
	trace       func(string, ...any)
	epoch       time.Time
	stopPublish atomic.Bool
}

// publishLoop is the live consumer: it reads every partition of the
// stand-in from where it is, as the Kafka source does, and publishes.
func (s *sim) publishLoop(ctx context.Context) {
	var msgs []*message.Message
	for ctx.Err() == nil && !s.stopPublish.Load() {
		recs := s.k.consume()
		if len(recs) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		msgs = simPublish(s, msgs[:0], recs)
		clear(msgs)
	}
}

// simPublish is the service's publish step (service.publish).
func simPublish(s *sim, msgs []*message.Message, recs []*wsdest.Record) []*message.Message {
	return s.tap.Publish(msgs, recs, func() [message.NumShapes]bool {
		want := s.h.Wants()
		want[message.ShapePlain] = want[message.ShapePlain] || want[message.ShapeSSEPlain]
		want[message.ShapeEnvelope] = want[message.ShapeEnvelope] || want[message.ShapeSSEEnvelope]
		return want
	}, s.h.Publish)
}

// fakeKafka is the stand-in for Kafka behind the Reader's source seam: a
// topic whose partitions hold records from a log start offset on, that
// deletes records (the log start moves), is recreated (offsets start
// again) and gains partitions; its fetches are delayed, some past the
// Reader's poll timeout, and some fail.
type fakeKafka struct {
	trace func(string, ...any)

	mu        sync.Mutex
	rng       *rand.Rand // fetch behaviour; guarded by mu
	gen       int        // incarnation of the topic
	id        [16]byte
	parts     []*fakePart
	grown     chan struct{} // closed when records are appended
	closed    chan struct{} // closed by close
	closeOnce sync.Once
	// consumed is the live consumer's position, by partition, for the
	// generation cgen; records are deleted only below it.
	consumed []int64
	cgen     int
	// oldStarts holds the log starts of each generation before gen.
	oldStarts [][]int64
}

type fakePart struct {
	start int64 // log start offset
	recs  []wsdest.Record
	base  int64 // offset of recs[0]
}

func (p *fakePart) end() int64 { return p.base + int64(len(p.recs)) }

func newFakeKafka(seed int64, parts int) *fakeKafka {
	k := &fakeKafka{rng: rand.New(rand.NewPCG(uint64(seed), 3)), grown: make(chan struct{}), closed: make(chan struct{})}
	k.id[0] = 1
	for range parts {
		k.parts = append(k.parts, &fakePart{})
	}
	return k
}

// produceLoop appends records, deletes some, recreates the topic and adds
// partitions, until stop.
func (k *fakeKafka) produceLoop(ctx context.Context, rng *rand.Rand, stop chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-time.After(time.Duration(5+rng.IntN(60)) * time.Millisecond):
		}
		k.mu.Lock()
		switch r := rng.IntN(1000); {
		case r < 25 && simHas("delete"):
			// Records deleted (retention, DeleteRecords): the log start
			// moves, also past what the live consumer has read (it goes
			// on from the log start: see consume).
			pi := rng.IntN(len(k.parts))
			p := k.parts[pi]
			to := min(p.end(), p.start+int64(1+rng.IntN(60)))
			k.trace("kafka: delete partition records below %d (start was %d)", to, p.start)
			p.start = to
		case r < 28 && simHas("recreate"):
			var st []int64
			for _, p := range k.parts {
				st = append(st, p.start)
			}
			k.oldStarts = append(k.oldStarts, st)
			k.gen++
			k.id[1] = byte(k.gen)
			k.trace("kafka: topic recreated (generation %d)", k.gen)
			for i := range k.parts {
				k.parts[i] = &fakePart{}
			}
		case r < 32 && len(k.parts) < 6 && simHas("grow"):
			k.trace("kafka: partition %d added", len(k.parts))
			k.parts = append(k.parts, &fakePart{})
		default:
			burst := 1 + rng.IntN(5)
			for range burst {
				pi := rng.IntN(len(k.parts))
				p := k.parts[pi]
				off := p.end()
				key := fmt.Sprintf("k%d", rng.IntN(4))
				p.recs = append(p.recs, wsdest.Record{
					Topic: "sim", Partition: int32(pi), Offset: off, Key: []byte(key),
					Value:     fmt.Appendf(nil, `{"g":%d,"p":%d,"o":%d}`, k.gen, pi, off),
					Timestamp: time.Now(),
				})
			}
			close(k.grown)
			k.grown = make(chan struct{})
		}
		k.mu.Unlock()
	}
}

// produceOne appends one record to every partition.
func (k *fakeKafka) produceOne() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for pi, p := range k.parts {
		off := p.end()
		p.recs = append(p.recs, wsdest.Record{
			Topic: "sim", Partition: int32(pi), Offset: off, Key: []byte("k0"),
			Value:     fmt.Appendf(nil, `{"g":%d,"p":%d,"o":%d}`, k.gen, pi, off),
			Timestamp: time.Now(),
		})
	}
	close(k.grown)
	k.grown = make(chan struct{})
}

// consume returns what the live consumer reads next: the latest records
// at first, a recreated topic from its start, a new partition from its
// start.
func (k *fakeKafka) consume() []*wsdest.Record {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.consumed == nil {
		for _, p := range k.parts {
			k.consumed = append(k.consumed, p.end())
		}
	}
	if k.cgen != k.gen {
		k.cgen = k.gen
		clear(k.consumed)
	}
	for len(k.consumed) < len(k.parts) {
		k.consumed = append(k.consumed, 0)
	}
	var out []*wsdest.Record
	for i, p := range k.parts {
		o := max(k.consumed[i], p.start)
		for ; o < p.end() && len(out) < 300; o++ {
			r := p.recs[o-p.base]
			out = append(out, &r)
		}
		k.consumed[i] = o
	}
	return out
}

func (k *fakeKafka) identity(context.Context) (wsdest.TopicIdentity, int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return wsdest.NewTopicIdentity("sim", k.id), len(k.parts), nil
}

func (k *fakeKafka) list(_ context.Context, which listing, at time.Time) (map[int32]int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[int32]int64, len(k.parts))
	for i, p := range k.parts {
		switch which {
		case listStart:
			out[int32(i)] = p.start
		case listEnd:
			out[int32(i)] = p.end()
		default:
			o := p.end()
			for j := max(p.start, p.base) - p.base; j < int64(len(p.recs)); j++ {
				if !p.recs[j].Timestamp.Before(at.Truncate(time.Millisecond)) {
					o = p.base + j
					break
				}
			}
			out[int32(i)] = o
		}
	}
	return out, nil
}

// offsetsAfterAll is offsetsAfter counting the records deleted since.
func (k *fakeKafka) offsetsAfterAll(at time.Time) map[int32]int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[int32]int64, len(k.parts))
	for i, p := range k.parts {
		o := p.end()
		for j := range p.recs {
			if !p.recs[j].Timestamp.Before(at.Truncate(time.Millisecond)) {
				o = p.base + int64(j)
				break
			}
		}
		out[int32(i)] = o
	}
	return out
}

// offsetsAfter is listAfter for the oracle.
func (k *fakeKafka) offsetsAfter(at time.Time) map[int32]int64 {
	o, _ := k.list(context.Background(), listAfter, at)
	return o
}

func (k *fakeKafka) fetch(ctx context.Context, p int32, from int64, max int) ([]*wsdest.Record, int64, error) {
	k.mu.Lock()
	var delay time.Duration
	switch r := k.rng.IntN(1000); {
	case r < 30 && simHas("slow"):
		delay = 1500 * time.Millisecond // a slow broker
		if r < 3 {
			delay = 6 * time.Second // past a fetch's timeout
		}
		k.trace("kafka: fetch of partition %d from %d takes %v", p, from, delay)
	case r < 50 && simHas("fail"):
		k.mu.Unlock()
		return nil, from, errors.New("fake: broker not available")
	case r < 300:
		delay = time.Duration(k.rng.IntN(200)) * time.Millisecond
	}
	k.mu.Unlock()
	if delay > 0 {
		select {
		case <-ctx.Done():
			return nil, from, nil
		case <-k.closed:
			return nil, from, errors.New("fake: closed")
		case <-time.After(delay):
		}
	}
	for {
		k.mu.Lock()
		if int(p) >= len(k.parts) {
			k.mu.Unlock()
			return nil, from, fmt.Errorf("fake: partition %d unknown", p)
		}
		pt := k.parts[p]
		from = min(pt.end(), maxInt(from, pt.start))
		if from < pt.end() {
			var out []*wsdest.Record
			for o := from; o < pt.end() && len(out) < max; o++ {
				r := pt.recs[o-pt.base]
				out = append(out, &r)
			}
			k.mu.Unlock()
			return out, out[len(out)-1].Offset + 1, nil
		}
		grown := k.grown
		k.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, from, nil
		case <-k.closed:
			return nil, from, errors.New("fake: closed")
		case <-grown:
		}
	}
}

func maxInt(a, b int64) int64 { return max(a, b) }

func (k *fakeKafka) close() { k.closeOnce.Do(func() { close(k.closed) }) }

// state returns, for the oracle, each partition's log start and end and
// the generation.
// startsOf returns each partition's log start in generation gen (the
// current one when gen is -1).
func (k *fakeKafka) startsOf(gen int) []int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if gen >= 0 && gen < k.gen {
		return k.oldStarts[gen]
	}
	var out []int64
	for _, p := range k.parts {
		out = append(out, p.start)
	}
	return out
}

func (k *fakeKafka) state() (starts, ends []int64, gen int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.parts {
		starts = append(starts, p.start)
		ends = append(ends, p.end())
	}
	return starts, ends, k.gen
}

// simClient is one client that comes and goes with its cursor, reading at
// its own pace; it checks its stream (the oracle) as it reads.
type simClient struct {
	sim *sim
	id  int
	rng *rand.Rand
	// snapRng decides when a stream starts with a snapshot (a generator
	// of its own: the other draws, and so every seed's schedule, stay as
	// they were before snapshots).
	snapRng *rand.Rand
	// snap is the snapshot being received (snapshot=true, until its
	// snapshot_end notice); nil otherwise.
	snap *simSnapshot

	cursor string // the last cursor received; "" before any
	// next is, by partition, the next offset the client must receive;
	// -1 where not established yet in this stream. first bounds, where
	// next is -1, the first offset it may start at: [lo, max(lo, log
	// start)].
	next    []int64
	firstLo []int64
	firstHi []int64
	since   time.Time // partitions beyond firstLo start at the first record stamped at or after it
	gen     int       // the topic generation the stream is in; -1 after a reset notice, until a record
	minGen  int       // while gen is -1: the generation of the next record is at least this
	connGen int       // Kafka's generation when the stream started
	err     error

	connMu sync.Mutex
	conn   net.Conn
}

func (c *simClient) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
		c.sim.trace("client %d: VIOLATION: %v", c.id, c.err)
	}
}

func (c *simClient) closeConn() {
	c.connMu.Lock()
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.connMu.Unlock()
}

// run connects, reads, drops and resumes until deadline, then stays
// connected until it has every record Kafka holds, or fails.
func (c *simClient) run(ctx context.Context, deadline time.Time) {
	for c.err == nil && ctx.Err() == nil {
		final := !time.Now().Before(deadline)
		st := c.start()
		var life time.Duration
		if !final {
			life = time.Duration(100+c.rng.IntN(1500)) * time.Millisecond
		}
		pace := time.Duration(0)
		if c.rng.IntN(3) == 0 {
			pace = time.Duration(c.rng.IntN(20)) * time.Millisecond
		}
		closed := c.session(ctx, st, life, pace, final)
		if final && !closed {
			return
		}
		if c.err == nil {
			time.Sleep(time.Duration(c.rng.IntN(500)) * time.Millisecond)
		}
	}
}

// start picks where the next stream starts: the cursor when the client
// has one (mostly), else earliest, a time, last=N or, rarely, latest.
func (c *simClient) start() wsdest.Start {
	if c.cursor != "" && c.rng.IntN(10) != 0 {
		cur, err := wsdest.ParseCursor(c.cursor)
		if err != nil {
			c.fail("own cursor does not parse: %v", err)
		}
		return wsdest.Start{Kind: wsdest.StartCursor, Cursor: cur}
	}
	c.cursor = ""
	if simHas("snapshot") && c.snapRng.IntN(3) == 0 {
		return wsdest.Start{Kind: wsdest.StartSnapshot}
	}
	switch c.rng.IntN(3) {
	case 0:
		return wsdest.Start{Kind: wsdest.StartTime, Time: time.Now().Add(-time.Duration(c.rng.IntN(10000)) * time.Millisecond)}
	case 2:
		return wsdest.Start{Kind: wsdest.StartLast, Last: 1 + c.rng.IntN(50)}
	}
	return wsdest.Start{Kind: wsdest.StartEarliest}
}

// session runs one connection: from st, for life (0: until the records
// are all in, final), reading one frame each pace. It reports whether the
// server closed the stream.
func (c *simClient) session(ctx context.Context, st wsdest.Start, life, pace time.Duration, final bool) (closed bool) {
	s := c.sim
	starts, _, gen := s.k.state()
	// What the oracle expects of the first records of each partition.
	c.next = c.next[:0]
	c.firstLo, c.firstHi = c.firstLo[:0], c.firstHi[:0]
	c.since = time.Time{}
	c.snap = nil // a snapshot left unfinished by a drop
	switch st.Kind {
	case wsdest.StartCursor:
		c.minGen = -1 // the stream goes on in the cursor's generation, until a reset notice
		for _, o := range st.Cursor.Offsets {
			c.next = append(c.next, o)
			c.firstLo = append(c.firstLo, o)
			c.firstHi = append(c.firstHi, o)
		}
		c.since = st.Cursor.Since
	case wsdest.StartEarliest:
		c.gen, c.minGen, c.connGen = -1, 0, gen
		// The service lists the log starts at most offsetsTTL ago, and
		// the history may hold records Kafka deleted since: from 0 on.
		c.firstLo = append(c.firstLo, make([]int64, len(starts))...)
		c.firstHi = append(c.firstHi, starts...)
	case wsdest.StartTime:
		c.gen, c.minGen, c.connGen = -1, 0, gen
		c.since = st.Time
		after := s.k.offsetsAfter(st.Time)
		for p := range starts {
			c.firstLo = append(c.firstLo, s.k.offsetsAfterAll(st.Time)[int32(p)])
			c.firstHi = append(c.firstHi, after[int32(p)])
		}
	case wsdest.StartLast:
		c.gen, c.minGen, c.connGen = -1, 0, gen
		c.firstLo = nil // anything
	case wsdest.StartSnapshot:
		// Checked by checkSnapshot up to snapshot_end, which places the
		// stream at the snapshot point.
		c.gen, c.minGen, c.connGen = -1, 0, gen
		c.snap = &simSnapshot{keys: map[string]bool{}}
	}
	s.trace("client %d: connect %s", c.id, startString(st, s.epoch))
	srv, cli := net.Pipe()
	c.connMu.Lock()
	c.conn = cli
	c.connMu.Unlock()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hc := s.h.AddClient(srv, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}, Park: true, OnClosed: cancel})
	go func() {
		err := s.res.Resume(sctx, hc, st, hc.Matches)
		if err == nil || sctx.Err() != nil {
			return
		}
		s.trace("client %d: catch-up failed: %v", c.id, err)
		hc.Close(wsframe.CloseInternalError, wsframe.ReasonCatchUpFailed, hub.ReasonCatchUp)
	}()
	var end <-chan time.Time
	if life > 0 {
		end = time.After(life)
	} else {
		end = time.After(simSettle)
	}
	frames := make(chan simFrame)
	go readFrames(cli, frames)
	defer func() {
		_ = cli.Close()
		for range frames { // until the reader ends
		}
	}()
	for {
		if final && c.complete() {
			s.trace("client %d: complete", c.id)
			return false
		}
		select {
		case <-end:
			if final {
				_, ends, _ := s.k.state()
				c.fail("not every record delivered within %v: at %v, Kafka ends at %v", simSettle, c.next, ends)
				return false
			}
			s.trace("client %d: drops", c.id)
			return false
		case f, ok := <-frames:
			if !ok {
				return true
			}
			if f.op == 8 {
				code := uint16(0)
				if len(f.payload) >= 2 {
					code = binary.BigEndian.Uint16(f.payload)
				}
				s.trace("client %d: closed by the server: %d %s", c.id, code, f.payload[min(2, len(f.payload)):])
				if code != 1011 && code != 1008 {
					c.fail("closed with %d %q", code, f.payload[min(2, len(f.payload)):])
				}
				return true
			}
			c.check(f.payload)
			if c.err != nil {
				return true
			}
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
}

func startString(st wsdest.Start, epoch time.Time) string {
	switch st.Kind {
	case wsdest.StartCursor:
		return "from cursor " + fmt.Sprint(st.Cursor.Offsets)
	case wsdest.StartEarliest:
		return "from=earliest"
	case wsdest.StartTime:
		return "from time " + st.Time.Sub(epoch).String()
	case wsdest.StartLast:
		return fmt.Sprintf("last=%d", st.Last)
	case wsdest.StartSnapshot:
		return "snapshot=true"
	}
	return "latest"
}

// complete reports whether the client has every record Kafka holds (or
// held since it started: Kafka may have deleted some after).
func (c *simClient) complete() bool {
	if c.snap != nil {
		return false
	}
	starts, ends, gen := c.sim.k.state()
	if g := c.gen; g != gen && !(g < 0 && c.connGen == gen) {
		return false
	}
	for p, e := range ends {
		if at := c.at(int32(p)); at != e && !(at < 0 && c.firstLo != nil && e <= max(c.hi(int32(p)), starts[p])) {
			return false
		}
	}
	return true
}

type simFrame struct {
	op      byte
	payload []byte
}

// readFrames reads server frames (unmasked) from conn until it fails.
func readFrames(conn net.Conn, out chan<- simFrame) {
	defer close(out)
	var h [10]byte
	for {
		if _, err := io.ReadFull(conn, h[:2]); err != nil {
			return
		}
		n := int64(h[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(conn, h[2:4]); err != nil {
				return
			}
			n = int64(binary.BigEndian.Uint16(h[2:4]))
		case 127:
			if _, err := io.ReadFull(conn, h[2:10]); err != nil {
				return
			}
			n = int64(binary.BigEndian.Uint64(h[2:10]))
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(conn, p); err != nil {
			return
		}
		out <- simFrame{op: h[0] & 0x0f, payload: p}
	}
}

// check is the oracle for one message.
func (c *simClient) check(payload []byte) {
	var m struct {
		Notice    string `json:"notice"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Key       string `json:"key"`
		Keys      int    `json:"keys"`
		From      int64  `json:"from"`
		To        int64  `json:"to"`
		Cursor    string `json:"cursor"`
		Value     struct {
			G int `json:"g"`
		} `json:"value"`
	}
	if err := json.Unmarshal(payload, &m); err != nil {
		c.fail("message is not JSON: %v: %s", err, payload)
		return
	}
	if c.snap != nil {
		c.checkSnapshot(m.Notice, m.Partition, m.Offset, m.Key, m.Keys, m.Value.G, m.Cursor)
		return
	}
	starts := c.sim.k.startsOf(c.gen)
	switch m.Notice {
	case "reset":
		c.sim.trace("client %d: reset notice", c.id)
		c.minGen, c.gen, c.connGen = max(c.gen+1, c.minGen), -1, -1 // a newer one: the next record tells which
		c.next = c.next[:0]
		c.firstLo = make([]int64, len(starts)) // from 0 (or the log start)
		c.firstHi = make([]int64, len(starts))
		c.since = time.Time{}
		return
	case "gap":
		p := m.Partition
		c.sim.trace("client %d: gap notice %d [%d, %d)", c.id, p, m.From, m.To)
		// A stream that has nothing of p yet may start it with a gap up
		// to where it may start.
		if at := c.at(p); at != m.From && !(at < 0 && c.mayStart(p, m.To, starts)) {
			c.fail("gap notice of partition %d from %d, but the client is at %d", p, m.From, at)
			return
		}
		if int(p) >= len(starts) || m.To > starts[p] {
			c.fail("gap notice of partition %d up to %d, but Kafka holds from %v", p, m.To, starts)
			return
		}
		c.set(p, m.To)
		return
	case "":
	default:
		c.fail("unknown notice %s", payload)
		return
	}
	if c.gen < 0 && c.minGen >= 0 && m.Value.G >= c.minGen {
		// The stream's generation: the service may not have noticed a
		// recreation yet, and serve the one before; where it started is
		// then not checked.
		c.gen = m.Value.G
		if c.connGen >= 0 && c.gen != c.connGen {
			c.firstLo = nil
		}
		starts = c.sim.k.startsOf(c.gen)
	}
	if m.Value.G != c.gen {
		c.fail("record %d/%d of topic generation %d in a stream of generation %d (no reset notice)", m.Partition, m.Offset, m.Value.G, c.gen)
		return
	}
	p, o := m.Partition, m.Offset
	if simVerbose {
		cur, _ := wsdest.ParseCursor(m.Cursor)
		c.sim.trace("client %d: record %d/%d cursor %v", c.id, p, o, cur.Offsets)
	}
	switch at := c.at(p); {
	case at < 0:
		if !c.mayStart(p, o, starts) {
			c.fail("first record of partition %d at %d: may start in [%d, max(that, log start %v)]", p, o, c.lo(p), starts)
			return
		}
	case o < at:
		c.fail("partition %d: offset %d again (or backwards), at %d", p, o, at)
		return
	case o > at:
		c.fail("partition %d: offsets [%d, %d) skipped with no gap notice (Kafka holds from %v)", p, at, o, starts)
		return
	}
	c.set(p, o+1)
	// The cursor claims exactly what the client has.
	cur, err := wsdest.ParseCursor(m.Cursor)
	if err != nil {
		c.fail("record %d/%d: cursor does not parse: %v", p, o, err)
		return
	}
	for q, off := range cur.Offsets {
		if off < 0 {
			continue
		}
		if at := c.at(int32(q)); at < 0 {
			if !c.mayStart(int32(q), off, starts) {
				c.fail("record %d/%d: cursor claims partition %d from %d, outside where it may start", p, o, q, off)
				return
			}
			c.set(int32(q), off)
		} else if at != off {
			c.fail("record %d/%d: cursor claims partition %d at %d, the client is at %d", p, o, q, off, at)
			return
		}
	}
	c.cursor = m.Cursor
}

// simSnapshot is what a client received of its snapshot so far.
type simSnapshot struct {
	point string // the snapshot point, the cursor of every message
	keys  map[string]bool
	n     int
}

// checkSnapshot is the oracle for a message of a snapshot: each a record
// of a key not seen before in the snapshot, with the snapshot point as its
// cursor, below the point in its partition, and the latest of its key
// there of what Kafka holds; then snapshot_end, with the point and the
// count, from which the stream goes on as from a cursor. Keys move
// between partitions (a record's partition is drawn), and the table holds
// the latest published: another partition's record of the key may be
// newer, so the check is within the record's partition.
func (c *simClient) checkSnapshot(notice string, p int32, o int64, key string, keys, g int, cursor string) {
	sn := c.snap
	if sn.point == "" {
		sn.point = cursor
	}
	if cursor != sn.point {
		c.fail("snapshot message %s %d/%d: cursor is not the snapshot point", notice, p, o)
		return
	}
	at, err := wsdest.ParseCursor(cursor)
	if err != nil {
		c.fail("snapshot point does not parse: %v", err)
		return
	}
	c.cursor = cursor // a drop from here on resumes at the point
	switch notice {
	case "snapshot_end":
		if keys != sn.n {
			c.fail("snapshot_end says %d keys, the snapshot had %d", keys, sn.n)
			return
		}
		c.sim.trace("client %d: snapshot of %d keys at %v", c.id, sn.n, at.Offsets)
		c.snap = nil
		starts, _, _ := c.sim.k.state()
		if c.gen < 0 {
			// An empty snapshot: the point is of the generation the
			// service published when it was taken, which its topic id
			// tells (fakeKafka.id: byte 0 set, byte 1 the generation),
			// and which may be older than Kafka's when the service has
			// not noticed a recreation yet; unknown before the service
			// first asked, when the first record tells.
			if id := at.Topic.ID; id[0] == 1 {
				c.gen = int(id[1])
			} else {
				c.minGen = 0
			}
		}
		c.next = append(c.next[:0], at.Offsets...)
		c.firstLo = make([]int64, len(starts)) // partitions the point has none in: from their start
		c.firstHi = append([]int64(nil), starts...)
		return
	case "":
	default:
		c.fail("notice %s during the snapshot", notice)
		return
	}
	sn.n++
	if c.gen < 0 {
		c.gen = g // the table holds records of one generation, the point's
	}
	if sn.keys[key] {
		c.fail("key %q twice in the snapshot", key)
		return
	}
	sn.keys[key] = true
	next, _ := at.Next(p)
	if o >= next {
		c.fail("snapshot record %d/%d at or past the point %v", p, o, at.Offsets)
		return
	}
	k := c.sim.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if g != k.gen || int(p) >= len(k.parts) {
		return // of a topic since recreated: nothing to compare with
	}
	part := k.parts[p]
	for i := max(o+1, part.base) - part.base; i < int64(len(part.recs)) && part.base+i < next; i++ {
		if string(part.recs[i].Key) == key {
			c.fail("snapshot record %d/%d of key %q, but %d/%d below the point is newer", p, o, key, p, part.base+i)
			return
		}
	}
}

func (c *simClient) at(p int32) int64 {
	if int(p) < len(c.next) {
		return c.next[p]
	}
	return -1
}

func (c *simClient) set(p int32, o int64) {
	for int(p) >= len(c.next) {
		c.next = append(c.next, -1)
	}
	c.next[p] = o
}

// lo and hi bound where a stream that has nothing of p yet may start it
// (below Kafka's log start, hi is that): at the offset its start asked
// for; for a partition created since, anywhere from its start to the
// first record stamped at or after Since (the history may still hold
// records Kafka deleted since).
func (c *simClient) lo(p int32) int64 {
	if int(p) < len(c.firstLo) && c.firstLo[p] >= 0 {
		return c.firstLo[p]
	}
	if !c.since.IsZero() {
		return c.sim.k.offsetsAfterAll(c.since)[p]
	}
	return 0
}

func (c *simClient) hi(p int32) int64 {
	if int(p) < len(c.firstHi) && c.firstHi[p] >= 0 {
		return c.firstHi[p]
	}
	if !c.since.IsZero() {
		return c.sim.k.offsetsAfter(c.since)[p]
	}
	return 0
}

// mayStart reports whether a stream that has nothing of p yet may start
// p at o: at its requested start, or later only where Kafka deleted the
// records between. last=N starts anywhere.
func (c *simClient) mayStart(p int32, o int64, starts []int64) bool {
	if c.at(p) >= 0 {
		return false
	}
	if c.firstLo == nil {
		return true
	}
	s := int64(0)
	if int(p) < len(starts) {
		s = starts[p]
	}
	return o >= c.lo(p) && o <= max(c.hi(p), s)
}
