package history

import (
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
)

// A snapshot point serves the snapshots of the next snapshotReuse, so
// that clients arriving together share its view and frames; after that,
// or once the topic is another, a new one is taken.
func TestSnapshotPointReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &recreatableSource{}
		cfg := ReaderConfig{Topic: "t", Logger: slog.New(slog.DiscardHandler)}
		cfg.setDefaults()
		rd := newReader(cfg, src)
		defer rd.Close()
		tap := NewTap(TapConfig{Encoder: encode.New(encode.Options{}), Reader: rd, Logger: cfg.Logger})
		r := NewResumer(ResumerConfig{Tap: tap, Reader: rd, Logger: cfg.Logger})
		taken := 0
		take := func() snapshotPoint {
			taken++
			return snapshotPoint{at: wsdest.Cursor{Topic: tap.Identity()}, cursor: "P"}
		}
		r.snapshotPoint(take)
		time.Sleep(snapshotReuse - time.Millisecond)
		r.snapshotPoint(take)
		if taken != 1 {
			t.Fatalf("%d points taken for two snapshots within %v, want 1", taken, snapshotReuse)
		}
		time.Sleep(time.Millisecond)
		r.snapshotPoint(take)
		if taken != 2 {
			t.Fatalf("%d points taken, want a new one once the point is %v old", taken, snapshotReuse)
		}
		p := tap.published.Load().Clone()
		p.Topic = wsdest.NewTopicIdentity("t", [16]byte{1})
		tap.published.Store(&p)
		r.snapshotPoint(take)
		if taken != 3 {
			t.Fatal("a point of the topic before its recreation was used again")
		}
	})
}
