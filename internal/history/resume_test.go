package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// fixedSource is a Kafka of one partition whose fetches return recs as
// they are, in their order, whatever is asked.
type fixedSource struct{ recs []*wsdest.Record }

func (s *fixedSource) identity(context.Context) (wsdest.TopicIdentity, int, error) {
	return wsdest.NewTopicIdentity("t", [16]byte{1}), 1, nil
}

func (s *fixedSource) list(_ context.Context, which listing, _ time.Time) (map[int32]int64, error) {
	if which == listEnd {
		return map[int32]int64{0: int64(len(s.recs))}, nil
	}
	return map[int32]int64{0: 0}, nil
}

func (s *fixedSource) fetch(_ context.Context, _ int32, from int64, _ int) ([]*wsdest.Record, int64, error) {
	next := from
	for _, r := range s.recs {
		next = max(next, r.Offset+1)
	}
	return s.recs, next, nil
}

func (s *fixedSource) close() {}

func records(offsets ...int64) []*wsdest.Record {
	var out []*wsdest.Record
	for _, o := range offsets {
		out = append(out, &wsdest.Record{Topic: "t", Offset: o, Value: fmt.Appendf(nil, `{"o":%d}`, o)})
	}
	return out
}

// A source that breaks the invariant (Kafka's records out of order: a
// position would move over offset 1, then back) fails the catch-up
// closed: Resume returns ErrCatchUp (the caller closes the client with
// 1011 and it resumes from its cursor), counts a hole, and the client
// gets nothing of the broken chunk.
func TestHoleFailsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src := &fixedSource{recs: records(0, 1, 2, 3)}
		cfg := ReaderConfig{Topic: "t", Logger: slog.New(slog.DiscardHandler)}
		cfg.setDefaults()
		rd := newReader(cfg, src)
		defer rd.Close()
		enc := encode.New(encode.Options{})
		tap := NewTap(TapConfig{Encoder: enc, Reader: rd, Logger: cfg.Logger})
		if err := tap.Run(ctx); err != nil {
			t.Fatal(err)
		}
		h := hub.New(hub.Config{PingInterval: -1, Logger: cfg.Logger})
		tap.Publish(nil, src.recs, h.Wants, h.Publish) // published up to offset 4
		res := NewResumer(ResumerConfig{Tap: tap, Reader: rd, Encoder: enc, Logger: cfg.Logger})

		src.recs = records(0, 2, 1, 3) // the broken source
		c := h.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}, Park: true})
		err := res.Resume(ctx, c, wsdest.Start{Kind: wsdest.StartEarliest}, c.Matches)
		if !errors.Is(err, ErrCatchUp) || !errors.Is(err, errHole) {
			t.Fatalf("Resume = %v, want a hole failing the catch-up", err)
		}
		if st := res.Stats(); st.Holes != 1 || st.Resumed != 0 {
			t.Fatalf("stats %+v", st)
		}
		if q, _ := c.WaitBacklog(ctx, 1<<30); q != 0 {
			t.Fatalf("%d bytes queued of the broken chunk", q)
		}

		// The same source in order: the client catches up and joins.
		src.recs = records(0, 1, 2, 3)
		d := h.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}, Park: true})
		if err := res.Resume(ctx, d, wsdest.Start{Kind: wsdest.StartEarliest}, d.Matches); err != nil {
			t.Fatal(err)
		}
		if st := res.Stats(); st.Resumed != 1 {
			t.Fatalf("stats %+v", st)
		}

		// A client that leaves during its catch-up is not counted as
		// resumed.
		e := h.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}, Park: true})
		e.Close(wsframe.CloseGoingAway, "", hub.ReasonClientClosed)
		if err := res.Resume(ctx, e, wsdest.Start{Kind: wsdest.StartEarliest}, e.Matches); err != nil {
			t.Fatal(err)
		}
		if st := res.Stats(); st.Resumed != 1 {
			t.Fatalf("a client that left was counted: %+v", st)
		}
	})
}

// advance moves a position only over what a source proves: a span that
// starts past the position, a message outside its span, a message out of
// order, or a gap Kafka still holds part of is a hole, and the position
// stays where it was.
func TestAdvanceRefusesHoles(t *testing.T) {
	msg := func(o int64) *message.Message {
		m := &message.Message{Partition: 0, Offset: o, Rows: 1}
		m.Frames[message.ShapePlain] = []byte("x")
		return m
	}
	tests := []struct {
		name   string
		from   origin
		msgs   []*message.Message
		spans  []Span
		starts map[int32]int64
		hole   bool
		at     int64
	}{
		{"contiguous", fromKafka, []*message.Message{msg(5), msg(6)}, []Span{{0, 5, 7}}, nil, false, 7},
		{"span past the position", fromHistory, []*message.Message{msg(8)}, []Span{{0, 8, 9}}, nil, true, 5},
		{"message outside its span", fromKafka, []*message.Message{msg(9)}, []Span{{0, 5, 7}}, nil, true, 5},
		{"out of order", fromKafka, []*message.Message{msg(6), msg(5)}, []Span{{0, 5, 7}}, nil, true, 5},
		{"already had", fromHistory, []*message.Message{msg(3), msg(5)}, []Span{{0, 3, 6}}, nil, false, 6},
		{"gap Kafka no longer holds", fromGone, nil, []Span{{0, 5, 9}}, map[int32]int64{0: 9}, false, 9},
		{"gap Kafka still holds", fromGone, nil, []Span{{0, 5, 9}}, map[int32]int64{0: 8}, true, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hub.New(hub.Config{PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
			c := h.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{All: true}, Park: true})
			j := newJob(&Resumer{}, c, func([]byte) bool { return true })
			j.pos = wsdest.Cursor{Offsets: []int64{5}}
			_, err := j.advance(tt.from, tt.msgs, tt.spans, tt.starts)
			if errors.Is(err, errHole) != tt.hole {
				t.Fatalf("advance = %v, want a hole: %v", err, tt.hole)
			}
			if o, _ := j.pos.Next(0); o != tt.at {
				t.Fatalf("position %d, want %d", o, tt.at)
			}
		})
	}
}

// Records a consumer reads again (after a consumer-group rebalance, from
// the last commit; or a rewind) reach a live client once: the tap drops
// what it published already. Without that, offsets 2 to 4 came twice.
func TestRereadRecordsNotPublishedTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src := &fixedSource{}
		cfg := ReaderConfig{Topic: "t", Logger: slog.New(slog.DiscardHandler)}
		cfg.setDefaults()
		rd := newReader(cfg, src)
		defer rd.Close()
		enc := encode.New(encode.Options{})
		tap := NewTap(TapConfig{Encoder: enc, Store: NewStore(StoreConfig{}), Reader: rd, Logger: cfg.Logger})
		if err := tap.Run(ctx); err != nil {
			t.Fatal(err)
		}
		h := hub.New(hub.Config{PingInterval: -1, Logger: cfg.Logger})
		srv, cli := net.Pipe()
		defer cli.Close()
		h.AddClient(srv, hub.ClientOptions{Sub: hub.Subscription{All: true}})
		frames := make(chan simFrame, 100)
		go readFrames(cli, frames)
		tap.Publish(nil, records(0, 1, 2, 3, 4), h.Wants, h.Publish)
		tap.Publish(nil, records(2, 3, 4, 5, 6), h.Wants, h.Publish) // read again, then new
		var got []string
		for range 7 {
			got = append(got, string((<-frames).payload))
		}
		synctest.Wait()
		select {
		case f := <-frames:
			got = append(got, string(f.payload))
		default:
		}
		if want := `[{"o":0} {"o":1} {"o":2} {"o":3} {"o":4} {"o":5} {"o":6}]`; fmt.Sprint(got) != want {
			t.Fatalf("got %v, want %s", got, want)
		}
	})
}

// countingSource is a partition of n records keyed "common", each with
// value as its value, that counts the records its fetches return.
type countingSource struct {
	fixedSource
	n     int64
	value []byte
	read  atomic.Int64
}

func (s *countingSource) fetch(_ context.Context, _ int32, from int64, max int) ([]*wsdest.Record, int64, error) {
	var out []*wsdest.Record
	for o := from; o < s.n && len(out) < max; o++ {
		out = append(out, &wsdest.Record{Topic: "t", Offset: o, Key: []byte("common"), Value: s.value})
	}
	s.read.Add(int64(len(out)))
	return out, from + int64(len(out)), nil
}

// last=N for a key no record has stops after lastScanBytes of a
// partition's records (here 8 KiB each), not at its start or after
// lastScanRecords.
func TestLastScanBounded(t *testing.T) {
	const size = 8 << 10
	src := &countingSource{n: 3 * lastScanRecords, value: make([]byte, size)}
	cfg := ReaderConfig{Topic: "t", Logger: slog.New(slog.DiscardHandler)}
	cfg.setDefaults()
	rd := newReader(cfg, src)
	defer rd.Close()
	res := NewResumer(ResumerConfig{Reader: rd, Encoder: encode.New(encode.Options{}), Logger: cfg.Logger})
	h := hub.New(hub.Config{PingInterval: -1, Logger: cfg.Logger})
	c := h.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{Keys: []string{"rare"}}, Park: true})
	j := newJob(res, c, c.Matches)
	got, err := j.lastFromKafka(t.Context(), 0, 0, src.n, 5)
	if err != nil || len(got) != 0 {
		t.Fatalf("got %d, %v", len(got), err)
	}
	// A window's reads may fetch a chunk past its end.
	if n, bound := src.read.Load(), int64(lastScanBytes/size+2*lastWindow+DefaultChunkRecords); n > bound {
		t.Fatalf("read %d records for last=5 of a rare key, want at most %d", n, bound)
	}
}

// partsSource is a Kafka whose partitions hold recs, every record from
// offset 0 on.
type partsSource struct{ recs [][]*wsdest.Record }

func (s *partsSource) identity(context.Context) (wsdest.TopicIdentity, int, error) {
	return wsdest.NewTopicIdentity("t", [16]byte{1}), len(s.recs), nil
}

func (s *partsSource) list(_ context.Context, which listing, _ time.Time) (map[int32]int64, error) {
	out := map[int32]int64{}
	for p, rs := range s.recs {
		out[int32(p)] = 0
		if which == listEnd {
			out[int32(p)] = int64(len(rs))
		}
	}
	return out, nil
}

func (s *partsSource) fetch(_ context.Context, p int32, from int64, _ int) ([]*wsdest.Record, int64, error) {
	rs := s.recs[p][min(from, int64(len(s.recs[p]))):]
	return rs, from + int64(len(rs)), nil
}

func (s *partsSource) close() {}

// last=N takes the N newest records by timestamp and, in each partition,
// everything after the first of them: a record older by its timestamp
// (another producer's clock) between two of the newest is delivered, not
// moved over unsent.
func TestLastNeverMovesOverUnsent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		base := time.Unix(1_700_000_000, 0)
		p0, p1 := recordsOf(0, 0, 1, 2), recordsOf(1, 0)
		for i, s := range []int{9, 1, 8} { // p0/1 is older by its timestamp than p1/0
			p0[i].Timestamp = base.Add(time.Duration(s) * time.Second)
		}
		p1[0].Timestamp = base.Add(5 * time.Second)
		src := &partsSource{recs: [][]*wsdest.Record{p0, p1}}
		cfg := ReaderConfig{Topic: "t", Logger: slog.New(slog.DiscardHandler)}
		cfg.setDefaults()
		rd := newReader(cfg, src)
		defer rd.Close()
		enc := encode.New(encode.Options{})
		store := NewStore(StoreConfig{})
		tap := NewTap(TapConfig{Encoder: enc, Store: store, Reader: rd, Logger: cfg.Logger})
		if err := tap.Run(ctx); err != nil {
			t.Fatal(err)
		}
		h := hub.New(hub.Config{PingInterval: -1, Logger: cfg.Logger})
		tap.Publish(nil, append(append([]*wsdest.Record{}, p0...), p1...), h.Wants, h.Publish)
		res := NewResumer(ResumerConfig{Tap: tap, Store: store, Reader: rd, Encoder: enc, Logger: cfg.Logger})
		for _, tt := range []struct {
			n    int
			want string
		}{
			{1, "[0/2]"},             // the newest by offset of each partition, then by timestamp
			{3, "[1/0 0/0 0/1 0/2]"}, // p0/1 is not among the newest 3, but after p0/0
			{4, "[1/0 0/0 0/1 0/2]"},
		} {
			c := h.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}, Park: true})
			j := newJob(res, c, c.Matches)
			j.pos = wsdest.Cursor{Topic: tap.Identity()} // as start does
			msgs, err := j.lastMessages(ctx, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, fmt.Sprintf("%d/%d", m.Partition, m.Offset))
			}
			if fmt.Sprint(got) != tt.want {
				t.Errorf("last=%d delivered %v, want %v", tt.n, got, tt.want)
			}
		}
	})
}

// mapSource is a Kafka whose partitions hold recs, each from its first
// record's offset (what is below was deleted).
type mapSource struct{ recs map[int32][]*wsdest.Record }

func (s *mapSource) identity(context.Context) (wsdest.TopicIdentity, int, error) {
	return wsdest.NewTopicIdentity("t", [16]byte{1}), len(s.recs), nil
}

func (s *mapSource) list(_ context.Context, which listing, _ time.Time) (map[int32]int64, error) {
	out := map[int32]int64{}
	for p, rs := range s.recs {
		if which == listEnd {
			out[p] = rs[len(rs)-1].Offset + 1
		} else {
			out[p] = rs[0].Offset
		}
	}
	return out, nil
}

func (s *mapSource) fetch(_ context.Context, p int32, from int64, max int) ([]*wsdest.Record, int64, error) {
	var got []*wsdest.Record
	next := from
	for _, r := range s.recs[p] {
		if r.Offset >= from && len(got) < max {
			got = append(got, r)
			next = r.Offset + 1
		}
	}
	return got, next, nil
}

func (s *mapSource) close() {}

// offsetOf returns the offset of an envelope frame, or -1 and the notice.
func offsetOf(t *testing.T, payload []byte) (int64, string) {
	var m struct {
		Notice string `json:"notice"`
		Offset int64  `json:"offset"`
	}
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("%s: %v", payload, err)
	}
	if m.Notice != "" {
		return -1, string(payload)
	}
	return m.Offset, ""
}

// When the live consumer's offset jumps forward (retention overtook a
// lagging consumer; a consumer group's partition came back from a later
// commit), the history does not claim the offsets it never saw: a client
// resuming inside the jump gets them from Kafka. Without that, the client
// resuming at 12 got 20 and 21 only, and Resume reported no hole.
func TestForwardJumpNotServedFromHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src := &mapSource{recs: map[int32][]*wsdest.Record{0: records(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)}}
		cfg := ReaderConfig{Topic: "t", Logger: slog.New(slog.DiscardHandler)}
		cfg.setDefaults()
		rd := newReader(cfg, src)
		defer rd.Close()
		enc := encode.New(encode.Options{})
		store := NewStore(StoreConfig{})
		tap := NewTap(TapConfig{Encoder: enc, Store: store, Reader: rd, Logger: cfg.Logger})
		if err := tap.Run(ctx); err != nil {
			t.Fatal(err)
		}
		h := hub.New(hub.Config{PingInterval: -1, Logger: cfg.Logger})
		tap.Publish(nil, records(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), h.Wants, h.Publish)
		// 10 to 21 were produced, 0 to 11 deleted, and the consumer's
		// offset jumped to 20.
		src.recs[0] = records(12, 13, 14, 15, 16, 17, 18, 19, 20, 21)
		tap.Publish(nil, records(20, 21), h.Wants, h.Publish)
		res := NewResumer(ResumerConfig{Tap: tap, Store: store, Reader: rd, Encoder: enc, Logger: cfg.Logger})

		srv, cli := net.Pipe()
		defer cli.Close()
		frames := make(chan simFrame, 100)
		go readFrames(cli, frames)
		c := h.AddClient(srv, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}, Park: true})
		cur := wsdest.Cursor{Topic: tap.Identity(), Offsets: []int64{12}}
		if err := res.Resume(ctx, c, wsdest.Start{Kind: wsdest.StartCursor, Cursor: cur}, c.Matches); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		var got []int64
		for len(frames) > 0 {
			o, notice := offsetOf(t, (<-frames).payload)
			if notice != "" {
				t.Fatalf("notice %s", notice)
			}
			got = append(got, o)
		}
		if want := "[12 13 14 15 16 17 18 19 20 21]"; fmt.Sprint(got) != want {
			t.Fatalf("got %v, want %s", got, want)
		}
	})
}

// A live envelope client is told of the records deleted before the live
// consumer read them (retention overtook it, and it went on from the log
// start), with a gap notice before the next record. Without it, the
// client went from offset 9 to 12 with no word.
func TestForwardJumpNoticedLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src := &mapSource{recs: map[int32][]*wsdest.Record{0: records(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)}}
		cfg := ReaderConfig{Topic: "t", Logger: slog.New(slog.DiscardHandler)}
		cfg.setDefaults()
		rd := newReader(cfg, src)
		defer rd.Close()
		tap := NewTap(TapConfig{Encoder: encode.New(encode.Options{}), Store: NewStore(StoreConfig{}), Reader: rd, Logger: cfg.Logger})
		if err := tap.Run(ctx); err != nil {
			t.Fatal(err)
		}
		h := hub.New(hub.Config{PingInterval: -1, Logger: cfg.Logger})
		srv, cli := net.Pipe()
		defer cli.Close()
		frames := make(chan simFrame, 100)
		go readFrames(cli, frames)
		h.AddClient(srv, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}})
		tap.Publish(nil, records(8, 9), h.Wants, h.Publish)
		src.recs[0] = records(12, 13, 14) // 10 to 14 produced, 0 to 11 deleted
		tap.Publish(nil, records(12, 13), h.Wants, h.Publish)
		tap.Publish(nil, records(14), h.Wants, h.Publish) // no jump: no notice
		synctest.Wait()
		var got []string
		for len(frames) > 0 {
			o, notice := offsetOf(t, (<-frames).payload)
			if notice == "" {
				notice = fmt.Sprint(o)
			}
			got = append(got, notice)
		}
		if want := `[8 9 {"notice":"gap","partition":0,"from":10,"to":12} 12 13 14]`; fmt.Sprint(got) != want {
			t.Fatalf("got %v, want %s", got, want)
		}
	})
}

// scanSource is a Kafka of one partition holding recs from offset start
// on; the first fetch from past offset 0 runs during first (a deletion, a
// recreation) before it answers.
type scanSource struct {
	mu    sync.Mutex
	recs  []*wsdest.Record
	start int64
	id    byte
	per   int // records per fetch at most; 0: as asked
	first func(s *scanSource)
}

func (s *scanSource) identity(context.Context) (wsdest.TopicIdentity, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return wsdest.NewTopicIdentity("t", [16]byte{s.id}), 1, nil
}

func (s *scanSource) list(_ context.Context, which listing, _ time.Time) (map[int32]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if which == listEnd {
		return map[int32]int64{0: int64(len(s.recs))}, nil
	}
	return map[int32]int64{0: s.start}, nil
}

func (s *scanSource) fetch(_ context.Context, _ int32, from int64, n int) ([]*wsdest.Record, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from > 0 && s.first != nil {
		s.first(s)
		s.first = nil
	}
	if s.per > 0 {
		n = min(n, s.per)
	}
	from = min(int64(len(s.recs)), max(from, s.start)) // Kafka's fetch goes on from its log start
	got := s.recs[from:min(int64(len(s.recs)), from+int64(n))]
	return got, from + int64(len(got)), nil
}

func (s *scanSource) close() {}

// A last=N scan of Kafka during which records are deleted (between two
// of its reads) or the topic is recreated, or a history reset since the
// job took its epoch, never gives the client records on both sides of
// what it lost: it gets only what Kafka still holds after the scan, or
// the catch-up fails closed before anything is pushed.
func TestLastScanDeletedOrRecreated(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first func(s *scanSource)
		stale bool // the history was reset since the job took its epoch
		want  string
		err   error
	}{
		{"deleted", func(s *scanSource) { s.start = 4 }, false, "[0/4 0/5 0/6 0/7 0/8 0/9]", nil},
		{"recreated", func(s *scanSource) { s.id = 2 }, false, "", errRecreated},
		{"history reset", nil, true, "", errRecreated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				src := &scanSource{recs: recordsOf(0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), id: 1, first: tt.first}
				cfg := ReaderConfig{Topic: "t", ChunkRecords: 2, Logger: slog.New(slog.DiscardHandler)}
				cfg.setDefaults()
				rd := newReader(cfg, src)
				defer rd.Close()
				enc := encode.New(encode.Options{})
				store := NewStore(StoreConfig{})
				tap := NewTap(TapConfig{Encoder: enc, Store: store, Reader: rd, Logger: cfg.Logger})
				if err := tap.Run(ctx); err != nil {
					t.Fatal(err)
				}
				h := hub.New(hub.Config{PingInterval: -1, Logger: cfg.Logger})
				res := NewResumer(ResumerConfig{Tap: tap, Store: store, Reader: rd, Encoder: enc, Logger: cfg.Logger})
				c := h.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}, Park: true})
				j := newJob(res, c, c.Matches)
				j.pos = wsdest.Cursor{Topic: tap.Identity()} // as start does
				j.epoch = store.Epoch()
				if tt.stale {
					j.epoch--
				}
				msgs, err := j.lastMessages(ctx, 10)
				if !errors.Is(err, tt.err) {
					t.Fatalf("last=10: error %v, want %v", err, tt.err)
				}
				var got []string
				for _, m := range msgs {
					got = append(got, fmt.Sprintf("%d/%d", m.Partition, m.Offset))
				}
				if tt.err == nil && fmt.Sprint(got) != tt.want {
					t.Errorf("last=10 delivered %v, want %v", got, tt.want)
				}
			})
		})
	}
}

// A chunk never holds a hole: records deleted between two fetches of one
// read end the chunk before them, so that its reader (job.fromKafka)
// sees the next one start past its position and checks the log start.
func TestReadChunkEndsAtDeletion(t *testing.T) {
	src := &scanSource{recs: recordsOf(0, 0, 1, 2, 3, 4, 5), id: 1, per: 2, first: func(s *scanSource) { s.start = 4 }}
	cfg := ReaderConfig{Topic: "t", ChunkRecords: 10, Logger: slog.New(slog.DiscardHandler)}
	cfg.setDefaults()
	rd := newReader(cfg, src)
	defer rd.Close()
	ch := rd.Read(t.Context(), 0, 0, 6)
	if ch.Err != nil {
		t.Fatal(ch.Err)
	}
	var got []int64
	for _, r := range ch.Recs {
		got = append(got, r.Offset)
	}
	if fmt.Sprint(got) != "[0 1]" || ch.Next != 2 {
		t.Errorf("read [0, 6) across a deletion: records %v up to %d, want [0 1] up to 2", got, ch.Next)
	}
}
