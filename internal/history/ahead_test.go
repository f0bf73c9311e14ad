package history

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
)

// aheadRig is a replica of a topic of two partitions whose Kafka holds
// offsets [0, 10) of partition 0 and [0, 60) of partition 1, and that
// publishes only partition 0 (as in consumer-group mode, where another
// replica owns partition 1).
type aheadRig struct {
	src *partsSource
	tap *Tap
	hub *hub.Hub
	res *Resumer
}

func newAheadRig(ctx context.Context, t *testing.T, concurrency int) *aheadRig {
	t.Helper()
	src := &partsSource{recs: [][]*wsdest.Record{recordsOf(0, seq(10)...), recordsOf(1, seq(60)...)}}
	log := slog.New(slog.DiscardHandler)
	cfg := ReaderConfig{Topic: "t", Logger: log}
	cfg.setDefaults()
	rd := newReader(cfg, src)
	t.Cleanup(rd.Close)
	enc := encode.New(encode.Options{})
	tap := NewTap(TapConfig{Encoder: enc, Store: NewStore(StoreConfig{}), Reader: rd, Logger: log})
	if err := tap.Run(ctx); err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{PingInterval: -1, Logger: log})
	res := NewResumer(ResumerConfig{Tap: tap, Store: tap.cfg.Store, Reader: rd, Encoder: enc, Concurrency: concurrency, Logger: log})
	return &aheadRig{src: src, tap: tap, hub: h, res: res}
}

// publish publishes offsets [from, to) of partition 0.
func (g *aheadRig) publish(from, to int64) {
	g.tap.Publish(nil, g.src.recs[0][from:to], g.hub.Wants, g.hub.Publish)
}

// resume resumes a new client from st; it returns the client and
// Resume's error.
func (g *aheadRig) resume(ctx context.Context, st wsdest.Start) (*hub.Client, error) {
	c := g.hub.AddClient(nil, hub.ClientOptions{Sub: hub.Subscription{All: true, Shape: message.ShapeEnvelope}, Park: true})
	return c, g.res.Resume(ctx, c, st, c.Matches)
}

func seq(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

func cursorAt(offs ...int64) wsdest.Start {
	return wsdest.Start{Kind: wsdest.StartCursor, Cursor: wsdest.Cursor{Topic: wsdest.NewTopicIdentity("t", [16]byte{1}), Offsets: offs}}
}

// A cursor past Kafka's end offset of a partition (cursors are not
// authenticated) is refused at once: it fails the catch-up closed instead
// of waiting for a publisher that never gets there, and such clients
// cannot take every concurrency slot from honest ones.
func TestCursorPastEndRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		g := newAheadRig(ctx, t, 2)
		g.publish(0, 10)
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := g.resume(ctx, cursorAt(1<<50, 0))
				errs <- err
			}()
		}
		synctest.Wait()

		hctx, hcancel := context.WithTimeout(ctx, time.Minute)
		defer hcancel()
		c, err := g.resume(hctx, wsdest.Start{Kind: wsdest.StartEarliest})
		if err != nil {
			t.Fatalf("honest resume: %v", err)
		}
		if q, _ := c.WaitBacklog(ctx, 1<<30); q == 0 {
			t.Fatal("honest resume got no records")
		}
		for range 2 {
			if err := <-errs; !errors.Is(err, ErrCatchUp) || !errors.Is(err, errPastEnd) {
				t.Fatalf("Resume from past the end = %v, want it refused", err)
			}
		}
		if st := g.res.Stats(); st.Resumed != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// A client ahead of what this replica published in a partition it never
// publishes (consumer-group mode: its cursor came from the replica owning
// it) holds no concurrency slot while it waits, and fails closed after
// AheadWait instead of waiting forever; one ahead of a replica that then
// gets there joins.
func TestAheadWaitIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		g := newAheadRig(ctx, t, 1)
		g.publish(0, 5)
		ahead := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := g.resume(ctx, cursorAt(5, 50)) // ahead in partition 1
			ahead <- err
		}()
		behind := make(chan error, 1)
		go func() {
			_, err := g.resume(ctx, cursorAt(8, 0)) // ahead in partition 0 until it is published
			behind <- err
		}()
		synctest.Wait()

		hctx, hcancel := context.WithTimeout(ctx, time.Second)
		defer hcancel()
		if _, err := g.resume(hctx, wsdest.Start{Kind: wsdest.StartEarliest}); err != nil {
			t.Fatalf("resume while others wait ahead: %v", err)
		}
		g.publish(5, 10)
		if err := <-behind; err != nil {
			t.Fatalf("resume of a client the publisher reached: %v", err)
		}
		if st := g.res.Stats(); st.Resumed != 2 {
			t.Fatalf("stats %+v", st)
		}
		if err := <-ahead; !errors.Is(err, ErrCatchUp) || !errors.Is(err, errAhead) {
			t.Fatalf("Resume ahead = %v, want it failed closed", err)
		}
		if d := time.Since(start); d != DefaultAheadWait {
			t.Fatalf("failed after %v, want %v", d, DefaultAheadWait)
		}
		if n := len(g.res.sem); n != 0 {
			t.Fatalf("%d concurrency slots still held", n)
		}
	})
}
