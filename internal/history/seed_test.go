package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/snapshot"
	"github.com/wsdest/wsdest/internal/testlog"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// slowSource is partsSource whose fetches take a second each and return
// one record, and whose records stamped at or after any time start at
// after (where the publisher starts).
type slowSource struct {
	partsSource
	after map[int32]int64
}

func (s *slowSource) list(ctx context.Context, which listing, at time.Time) (map[int32]int64, error) {
	if which == listAfter {
		return s.after, nil
	}
	return s.partsSource.list(ctx, which, at)
}

func (s *slowSource) fetch(ctx context.Context, p int32, from int64, _ int) ([]*wsdest.Record, int64, error) {
	time.Sleep(time.Second)
	rs, next, err := s.partsSource.fetch(ctx, p, from, 1)
	if len(rs) > 1 {
		rs, next = rs[:1], from+1
	}
	return rs, next, err
}

// keyed returns records of partition p from offset 0, one per "key=value"
// ("key=" is a tombstone).
func keyed(p int32, kvs ...string) []*wsdest.Record {
	var out []*wsdest.Record
	for i, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		var val []byte
		if v != "" {
			val = []byte(v)
		}
		out = append(out, &wsdest.Record{Topic: "t", Partition: p, Offset: int64(i), Key: []byte(k), Value: val, Timestamp: time.Unix(1_700_000_000, 0)})
	}
	return out
}

// Seeding reads every partition into the table (the latest value per key,
// a tombstone removing its key), never over what the publisher put or
// deleted meanwhile, writes a progress line while it runs and one when
// done, and only then lets a snapshot be taken.
func TestSeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// The publisher starts at the end of partition 0, at offset 4
		// of partition 1, where it publishes a newer "live" and a
		// tombstone of "gone" before seeding reads the older ones, and
		// at offset 1 of partition 2, where it has not read the newer
		// "x" yet: seeding stops below it (a snapshot now must not hold
		// what its catch-up delivers after it).
		p1 := keyed(1, `d={"v":1}`, `e={"v":1}`, `live={"v":"seeded"}`, `gone={"v":"seeded"}`, `live={"v":"live"}`, `gone=`)
		src := &slowSource{partsSource: partsSource{recs: [][]*wsdest.Record{
			keyed(0, `a={"v":1}`, `b={"v":1}`, `a={"v":2}`, `c={"v":1}`, `c=`),
			p1,
			keyed(2, `x={"v":1}`, `x={"v":2}`),
		}}, after: map[int32]int64{0: 5, 1: 4, 2: 1}}
		var log testlog.Buffer
		logger := log.Logger(-4)
		cfg := ReaderConfig{Topic: "t", Logger: logger}
		cfg.setDefaults()
		rd := newReader(cfg, src)
		defer rd.Close()
		enc := encode.New(encode.Options{Logger: logger})
		tbl := snapshot.New(snapshot.Config{Logger: logger})
		tbl.StartSeeding()
		tap := NewTap(TapConfig{Encoder: enc, Table: tbl, Reader: rd, Logger: logger})
		if err := tap.Run(ctx); err != nil {
			t.Fatal(err)
		}
		tap.Publish(nil, p1[4:], func() (w [message.NumShapes]bool) { return w }, func([]*message.Message) {})
		done := make(chan error, 1)
		go func() {
			done <- Seed(ctx, SeedConfig{Tap: tap, Reader: rd, Table: tbl, Encoder: enc, Progress: 2 * time.Second, Logger: logger})
		}()
		time.Sleep(time.Second / 2)
		if tbl.IsSeeded() {
			t.Fatal("seeded before it read anything")
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !tbl.IsSeeded() {
			t.Fatal("not marked seeded")
		}
		var got []string
		for _, m := range tbl.View().Messages(func([]byte) bool { return true }) {
			v, _ := wsframe.TextPayload(m.Frames[message.ShapePlain])
			got = append(got, fmt.Sprintf("%s=%s", m.Key, v))
		}
		slices.Sort(got)
		want := []string{`a={"v":2}`, `b={"v":1}`, `d={"v":1}`, `e={"v":1}`, `live={"v":"live"}`, `x={"v":1}`}
		if !slices.Equal(got, want) {
			t.Fatalf("table %q, want %q", got, want)
		}
		if n := len(log.Lines("snapshot: seeding the table from Kafka")); n < 1 {
			t.Fatalf("no progress line:\n%s", log.String())
		}
		if n := len(log.Lines("snapshot: table seeded from Kafka")); n != 1 {
			t.Fatalf("%d lines for the end of seeding:\n%s", n, log.String())
		}
	})
}

// A snapshot waits for seeding without a concurrency slot: a client
// resuming from a cursor meanwhile is served (here with one slot).
func TestSnapshotWaitsForSeedingWithoutASlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src := &partsSource{recs: [][]*wsdest.Record{keyed(0, `a={"v":1}`)}}
		logger := slog.New(slog.DiscardHandler)
		cfg := ReaderConfig{Topic: "t", Logger: logger}
		cfg.setDefaults()
		rd := newReader(cfg, src)
		defer rd.Close()
		enc := encode.New(encode.Options{Logger: logger})
		tbl := snapshot.New(snapshot.Config{Logger: logger})
		tbl.StartSeeding() // and never seeded
		tap := NewTap(TapConfig{Encoder: enc, Store: NewStore(StoreConfig{}), Table: tbl, Reader: rd, Logger: logger})
		if err := tap.Run(ctx); err != nil {
			t.Fatal(err)
		}
		h := hub.New(hub.Config{PingInterval: -1, Logger: logger})
		res := NewResumer(ResumerConfig{Tap: tap, Store: NewStore(StoreConfig{}), Table: tbl, Reader: rd, Encoder: enc, Concurrency: 1, Logger: logger})
		snapC := h.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}, Park: true})
		snapDone := make(chan error, 1)
		go func() { snapDone <- res.Resume(ctx, snapC, wsdest.Start{Kind: wsdest.StartSnapshot}, snapC.Matches) }()
		synctest.Wait()
		c := h.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}, Park: true})
		if err := res.Resume(ctx, c, wsdest.Start{Kind: wsdest.StartEarliest}, c.Matches); err != nil {
			t.Fatalf("a resume while a snapshot waits for seeding: %v", err)
		}
		select {
		case err := <-snapDone:
			t.Fatalf("the snapshot did not wait for seeding: %v", err)
		default:
		}
		cancel()
		<-snapDone
	})
}

// At the bound, seeding never evicts what the publisher put to bring back
// an older record of its key: the snapshot holds the value published
// last, a={"v":"live"}, not the one it replaced.
func TestSeedAtBoundKeepsWhatWasPublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		p0 := keyed(0, `b={"v":1}`, `c={"v":1}`, `a={"v":"old"}`, `a={"v":"live"}`)
		src := &slowSource{partsSource: partsSource{recs: [][]*wsdest.Record{p0}}, after: map[int32]int64{0: 3}}
		var log testlog.Buffer
		logger := log.Logger(-4)
		cfg := ReaderConfig{Topic: "t", Logger: logger}
		cfg.setDefaults()
		rd := newReader(cfg, src)
		defer rd.Close()
		enc := encode.New(encode.Options{Logger: logger})
		tbl := snapshot.New(snapshot.Config{MaxKeys: 2, Logger: logger})
		tbl.StartSeeding()
		tap := NewTap(TapConfig{Encoder: enc, Table: tbl, Reader: rd, Logger: logger})
		if err := tap.Run(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- Seed(ctx, SeedConfig{Tap: tap, Reader: rd, Table: tbl, Encoder: enc, Logger: logger}) }()
		time.Sleep(time.Second / 2) // seeding has its range [0, 3) and reads it
		tap.Publish(nil, p0[3:], func() (w [message.NumShapes]bool) { return w }, func([]*message.Message) {})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for _, m := range tbl.View().Messages(func([]byte) bool { return true }) {
			t.Logf("%s@%d %s", m.Key, m.Offset, m.Frames[message.ShapePlain])
			v, _ := wsframe.TextPayload(m.Frames[message.ShapePlain])
			if s := fmt.Sprintf("%s=%s", m.Key, v); s == `a={"v":"old"}` {
				t.Fatalf("the table serves %s, superseded by a={\"v\":\"live\"} published before any snapshot point", s)
			}
		}
	})
}

// A client that does not read its snapshot holds at most about its queue
// bound of framed snapshot messages, not a framed copy of every key.
func TestSnapshotFramesBoundedByBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		logger := slog.New(slog.DiscardHandler)
		cfg := ReaderConfig{Topic: "t", Logger: logger}
		cfg.setDefaults()
		rd := newReader(cfg, &partsSource{recs: [][]*wsdest.Record{nil}})
		defer rd.Close()
		enc := encode.New(encode.Options{Logger: logger})
		tbl := snapshot.New(snapshot.Config{Logger: logger})
		const keys = 10_000
		pad := strings.Repeat("x", 300)
		pos := wsdest.Cursor{Offsets: []int64{0}}
		for i := range keys {
			rec := &wsdest.Record{Topic: "t", Offset: int64(i), Key: []byte(fmt.Sprintf("k%05d", i)), Value: []byte(fmt.Sprintf(`{"pad":%q}`, pad)), Timestamp: time.Now()}
			tbl.Put(enc.EncodeKept(nil, rec, [message.NumShapes]bool{}, &pos)[0])
		}
		tap := NewTap(TapConfig{Encoder: enc, Table: tbl, Reader: rd, Logger: logger})
		if err := tap.Run(ctx); err != nil {
			t.Fatal(err)
		}
		const queue = 64 << 10
		h := hub.New(hub.Config{PingInterval: -1, MaxQueueBytes: queue, Logger: logger})
		res := NewResumer(ResumerConfig{Tap: tap, Store: NewStore(StoreConfig{}), Table: tbl, Reader: rd, Encoder: enc, Logger: logger})
		tbl.View().Messages(func([]byte) bool { return true }) // the shared view, built and sorted
		before := int64(liveHeap())
		c := h.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeSSEEnvelope}, Park: true})
		done := make(chan error, 1)
		go func() { done <- res.Resume(ctx, c, wsdest.Start{Kind: wsdest.StartSnapshot}, c.Matches) }()
		synctest.Wait() // the snapshot waits for the client's backlog
		held := int64(liveHeap()) - before
		if held > 8*queue {
			t.Fatalf("a client that reads nothing holds %d KB of its %d-key snapshot (queue bound %d KB)", held>>10, keys, queue>>10)
		}
		cancel()
		<-done
	})
}

// failingSource is partsSource whose reads fail, and whose listings by
// time too once failList is set.
type failingSource struct {
	partsSource
	failList bool
}

var errFrozen = errors.New("broker frozen")

func (s *failingSource) list(ctx context.Context, which listing, at time.Time) (map[int32]int64, error) {
	switch {
	case which != listAfter:
		return s.partsSource.list(ctx, which, at)
	case s.failList:
		return nil, errFrozen
	}
	return s.partsSource.list(ctx, listEnd, at) // the publisher starts at the end
}

func (s *failingSource) fetch(context.Context, int32, int64, int) ([]*wsdest.Record, int64, error) {
	return nil, 0, errFrozen
}

// A broker that answers the publisher but never the seeding keeps the
// table unready for SNAPSHOT_SEED_TIMEOUT only: then it serves what was
// read, and a warning says so. Meanwhile the retries are logged once, and
// progress lines are written even before the partitions are listed.
func TestSeedTimeoutServesWhatWasRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		list bool
	}{{"listing fails", true}, {"reads fail", false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				var log testlog.Buffer
				logger := log.Logger(-4)
				src := &failingSource{partsSource: partsSource{recs: [][]*wsdest.Record{keyed(0, `a={"v":1}`)}}}
				cfg := ReaderConfig{Topic: "t", Logger: logger}
				cfg.setDefaults()
				rd := newReader(cfg, src)
				defer rd.Close()
				enc := encode.New(encode.Options{Logger: logger})
				tbl := snapshot.New(snapshot.Config{Logger: logger})
				tbl.StartSeeding()
				tap := NewTap(TapConfig{Encoder: enc, Table: tbl, Reader: rd, Logger: logger})
				if err := tap.Run(ctx); err != nil {
					t.Fatal(err)
				}
				src.failList = tc.list // the publisher has its positions
				var since time.Time    // everything: a read
				if tc.list {
					since = time.Unix(1, 0) // a listing by time
				}
				err := Seed(ctx, SeedConfig{Tap: tap, Reader: rd, Table: tbl, Encoder: enc, Since: since, Timeout: time.Minute, Logger: logger})
				if err != nil {
					t.Fatalf("Seed: %v", err)
				}
				if !tbl.IsSeeded() {
					t.Fatal("the table is not ready after the seeding timeout")
				}
				out := log.String()
				for _, want := range []string{"did not finish in time", "seeding the table from Kafka"} {
					if !strings.Contains(out, want) {
						t.Errorf("no %q in the log:\n%s", want, out)
					}
				}
				if n := strings.Count(out, "seeding from Kafka failed"); n < 1 || n > 3 {
					t.Errorf("%d retry warnings in a minute of retries every second, want one every 30 s:\n%s", n, out)
				}
			})
		})
	}
}
