package service

import (
	"context"
	"time"

	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/history"
	"github.com/wsdest/wsdest/internal/snapshot"
)

// newTable creates the table of latest values per key (SNAPSHOT,
// SNAPSHOT_MAX_KEYS), marked as being seeded (SNAPSHOT_LOOKBACK) until
// seed has read it from Kafka; none with SNAPSHOT=false.
func (s *Service) newTable() {
	if !s.cfg.Snapshot.On {
		return
	}
	s.table = snapshot.New(snapshot.Config{MaxKeys: s.cfg.Snapshot.MaxKeys, Logger: s.log})
	s.table.StartSeeding()
	format, _ := encode.ParseFormat(s.cfg.Decode.Format) // checked by newEncoder
	s.seedEnc = encode.New(encode.Options{
		Format:          format,
		Logger:          s.log,
		MaxRecordRows:   s.cfg.Decode.MaxRecordRows,
		MaxDecodedBytes: s.cfg.Decode.MaxDecodedBytes,
	})
}

// seed reads the table's start from Kafka; /readyz answers 503
// (snapshot_seeding) until it is done. It ends with ctx.
func (s *Service) seed(ctx context.Context) error {
	var since time.Time
	if !s.cfg.Snapshot.Earliest {
		since = time.Now().Add(-s.cfg.Snapshot.Lookback)
	}
	err := history.Seed(ctx, history.SeedConfig{
		Tap:     s.tap,
		Reader:  s.reader,
		Table:   s.table,
		Encoder: s.seedEnc,
		Since:   since,
		Timeout: s.cfg.Snapshot.SeedTimeout,
		Logger:  s.log,
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
