package history

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/snapshot"
)

// recreatableSource is a Kafka of two partitions whose every listing is
// offset 0 and whose topic id is gen: a topic recreated, each time empty.
// While hold is set, identity requests wait for it to close.
type recreatableSource struct {
	fixedSource
	mu   sync.Mutex
	gen  byte
	hold chan struct{}
}

func (s *recreatableSource) identity(context.Context) (wsdest.TopicIdentity, int, error) {
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return wsdest.NewTopicIdentity("t", [16]byte{1, s.gen}), 2, nil
}

func (s *recreatableSource) list(context.Context, listing, time.Time) (map[int32]int64, error) {
	return map[int32]int64{0: 0, 1: 0}, nil
}

func (s *recreatableSource) recreate() {
	s.mu.Lock()
	s.gen++
	s.mu.Unlock()
}

// The tap tells a topic recreated from its records' offsets and
// partitions only with the identity Kafka gives, which it asks for when
// they do not follow what it published. A partition's position seeded
// from a listing (after a recreation, every partition's) is followed as
// well by the first record of a topic recreated again since as by one of
// the topic it was listed of: so that first record is checked too, and
// a topic recreated twice within moments gets its reset notice each time.
func TestTapNoticesEveryRecreation(t *testing.T) {
	for _, tc := range []struct {
		name string
		// batches are published in turn, each after recreate of its own
		// is done; resets is how many reset notices each must carry.
		batches  [][]*wsdest.Record
		recreate []bool
		resets   []int
	}{{
		name:     "offsets go backwards",
		batches:  [][]*wsdest.Record{recordsOf(0, 0, 1, 2), recordsOf(0, 0)},
		recreate: []bool{false, true},
		resets:   []int{0, 1},
	}, {
		name:     "again before a record of the seeded partition",
		batches:  [][]*wsdest.Record{recordsOf(0, 0, 1, 2), recordsOf(0, 0), recordsOf(1, 0)},
		recreate: []bool{false, true, true},
		resets:   []int{0, 1, 1},
	}, {
		name:     "seeded partition confirmed by a record",
		batches:  [][]*wsdest.Record{recordsOf(0, 0, 1, 2), recordsOf(0, 0), recordsOf(1, 0), recordsOf(1, 1)},
		recreate: []bool{false, true, false, false},
		resets:   []int{0, 1, 0, 0},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			src := &recreatableSource{}
			cfg := ReaderConfig{Topic: "t", Logger: slog.New(slog.DiscardHandler)}
			cfg.setDefaults()
			rd := newReader(cfg, src)
			defer rd.Close()
			store := NewStore(StoreConfig{})
			tap := NewTap(TapConfig{Encoder: encode.New(encode.Options{}), Store: store, Reader: rd, Logger: cfg.Logger})
			if err := tap.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			want := func() [message.NumShapes]bool { return [message.NumShapes]bool{message.ShapeEnvelope: true} }
			epochs := uint64(0)
			for i, recs := range tc.batches {
				if tc.recreate[i] {
					src.recreate()
				}
				resets := 0
				// What a client that got this batch and came back at
				// once would be placed by (see Tap.Publish).
				var during wsdest.TopicIdentity
				for _, m := range tap.Publish(nil, recs, want, func([]*message.Message) { during = tap.Identity() }) {
					if m.Partition < 0 {
						resets++
					}
				}
				epochs += uint64(resets)
				if resets != tc.resets[i] || store.Epoch() != epochs {
					t.Fatalf("batch %d: %d reset notices (store epoch %d), want %d", i, resets, store.Epoch(), tc.resets[i])
				}
				if id, _, _ := src.identity(t.Context()); tap.Identity() != id || during != id {
					t.Fatalf("batch %d: the tap's identity is %v (%v while the batch was handed to clients), Kafka's %v", i, tap.Identity(), during, id)
				}
			}
		})
	}
}

// The identity request a batch needs is made before the tap takes its
// lock: while Kafka is slow to answer it, catch-ups can still join the
// live stream (Tap.join) and wait for the next batch.
func TestTapAsksKafkaOutsideItsLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &recreatableSource{}
		cfg := ReaderConfig{Topic: "t", Logger: slog.New(slog.DiscardHandler)}
		cfg.setDefaults()
		rd := newReader(cfg, src)
		defer rd.Close()
		tap := NewTap(TapConfig{Encoder: encode.New(encode.Options{}), Store: NewStore(StoreConfig{}), Reader: rd, Logger: cfg.Logger})
		if err := tap.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		want := func() [message.NumShapes]bool { return [message.NumShapes]bool{message.ShapeEnvelope: true} }
		tap.Publish(nil, recordsOf(0, 0, 1, 2), want, func([]*message.Message) {})

		hold := make(chan struct{})
		src.mu.Lock()
		src.hold = hold
		src.mu.Unlock()
		published := make(chan struct{})
		go func() {
			defer close(published)
			tap.Publish(nil, recordsOf(0, 0), want, func([]*message.Message) {}) // backwards: asks Kafka
		}()
		synctest.Wait() // the publisher waits for Kafka's answer
		if !tap.mu.TryLock() {
			t.Fatal("the tap's lock is held while Kafka is asked: no catch-up can join meanwhile")
		}
		tap.mu.Unlock()
		select {
		case <-published:
			t.Fatal("the batch was published before Kafka answered")
		default:
		}
		close(hold)
		<-published
	})
}

// recordsOf returns records of partition p at offsets.
func recordsOf(p int32, offsets ...int64) []*wsdest.Record {
	recs := records(offsets...)
	for _, r := range recs {
		r.Partition = p
		r.Value = fmt.Appendf(nil, `{"p":%d,"o":%d}`, p, r.Offset)
	}
	return recs
}

// lockProbe is a log handler that records, for every line, whether the
// tap's lock was free while the line was written.
type lockProbe struct {
	mu    sync.Mutex
	tap   *Tap
	lines []string
	held  int
}

func (h *lockProbe) Enabled(context.Context, slog.Level) bool { return true }
func (h *lockProbe) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *lockProbe) WithGroup(string) slog.Handler            { return h }
func (h *lockProbe) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tap == nil {
		return nil
	}
	h.lines = append(h.lines, r.Message)
	if h.tap.mu.TryLock() {
		h.tap.mu.Unlock()
	} else {
		h.held++
	}
	return nil
}

// What a batch did is logged after the tap releases its lock, which a
// joining catch-up takes: no log I/O under it.
func TestTapLogsOutsideItsLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		probe := &lockProbe{}
		log := slog.New(probe)
		cfg := ReaderConfig{Topic: "t", Logger: log}
		cfg.setDefaults()
		rd := newReader(cfg, &fixedSource{})
		defer rd.Close()
		tap := NewTap(TapConfig{Encoder: encode.New(encode.Options{}), Store: NewStore(StoreConfig{}), Reader: rd, Logger: log})
		if err := tap.Run(ctx); err != nil {
			t.Fatal(err)
		}
		probe.mu.Lock()
		probe.tap = tap
		probe.mu.Unlock()
		want := func() (w [message.NumShapes]bool) { return w }
		discard := func([]*message.Message) {}
		tap.Publish(nil, records(0, 1, 2), want, discard)
		tap.Publish(nil, records(1, 2, 3), want, discard) // read again: logged
		probe.mu.Lock()
		defer probe.mu.Unlock()
		if len(probe.lines) == 0 || probe.held > 0 {
			t.Fatalf("%d of the lines %q written under the tap's lock", probe.held, probe.lines)
		}
	})
}

// The tap puts in the table the last row of a Quix record of many rows
// alone, not the whole record it shares an allocation with.
func TestTapTableKeepsOneRowOfAQuixRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rows = 20_000
		var vals, ts []string
		for i := range rows {
			vals = append(vals, fmt.Sprint(i))
			ts = append(ts, fmt.Sprint(1796167464325734270+i))
		}
		value := []byte(`{"C":"JT","K":"ParameterData","V":{"NumericValues":{"a":[` + strings.Join(vals, ",") + `]},"Timestamps":[` + strings.Join(ts, ",") + `]}}`)
		rec := &wsdest.Record{Topic: "t", Partition: 0, Offset: 0, Key: []byte("k"), Value: value, Timestamp: time.Now()}
		logger := slog.New(slog.DiscardHandler)
		cfg := ReaderConfig{Topic: "t", Logger: logger}
		cfg.setDefaults()
		rd := newReader(cfg, &partsSource{recs: [][]*wsdest.Record{{rec}}})
		defer rd.Close()
		tbl := snapshot.New(snapshot.Config{Logger: logger})
		tap := NewTap(TapConfig{Encoder: encode.New(encode.Options{Logger: logger}), Table: tbl, Reader: rd, Logger: logger})
		if err := tap.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		before := int64(liveHeap())
		n := len(tap.Publish(nil, []*wsdest.Record{rec}, func() (w [message.NumShapes]bool) { return w }, func([]*message.Message) {}))
		if n != rows {
			t.Fatalf("%d messages published, want %d", n, rows)
		}
		value, rec = nil, nil
		held := int64(liveHeap()) - before
		runtime.KeepAlive(tap)
		if held > 256<<10 {
			t.Fatalf("the table holds %d KB for one key's last row: the record's %d rows are kept alive", held>>10, rows)
		}
	})
}

// liveHeap returns the live heap after two collections.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
