package config

import (
	"strings"
	"time"
)

// The snapshot settings.
const (
	EnvSnapshot            = "SNAPSHOT"
	EnvSnapshotMaxKeys     = "SNAPSHOT_MAX_KEYS"
	EnvSnapshotLookback    = "SNAPSHOT_LOOKBACK"
	EnvSnapshotSeedTimeout = "SNAPSHOT_SEED_TIMEOUT"
)

// Defaults of the snapshot settings. The table's bound (SNAPSHOT_MAX_KEYS)
// is the snapshot package's default when unset.
const (
	DefaultSnapshotLookback = 24 * time.Hour
	// DefaultSnapshotSeedTimeout bounds the reading of SNAPSHOT_LOOKBACK
	// at start-up.
	DefaultSnapshotSeedTimeout = 5 * time.Minute
	// SnapshotEarliest is the SNAPSHOT_LOOKBACK that reads every record
	// Kafka holds (a compacted topic).
	SnapshotEarliest = "earliest"
)

// Snapshot holds the settings of the table of latest values per key,
// which serves snapshot=true.
type Snapshot struct {
	// On is SNAPSHOT: keep the table. Default true; false keeps no table,
	// reads nothing at start-up, and answers snapshot=true with 400.
	On bool
	// MaxKeys is SNAPSHOT_MAX_KEYS: the keys the table holds at most (the
	// least recently updated goes past it). Unset: 0, the snapshot
	// package's default (100,000).
	MaxKeys int
	// Lookback is SNAPSHOT_LOOKBACK: how far back the table is read from
	// Kafka at start-up, before /readyz answers 200. Default 24h.
	// Ignored when Earliest is set.
	Lookback time.Duration
	// Earliest is SNAPSHOT_LOOKBACK=earliest: everything Kafka holds is
	// read (a compacted topic).
	Earliest bool
	// SeedTimeout is SNAPSHOT_SEED_TIMEOUT: past it, reading the lookback
	// stops, a warning says so, and the table serves what was read.
	// Default 5m.
	SeedTimeout time.Duration
}

func (p *parser) snapshot() Snapshot {
	s := Snapshot{On: p.boolean(EnvSnapshot, true), MaxKeys: p.integer(EnvSnapshotMaxKeys, 0, 1), Lookback: DefaultSnapshotLookback,
		SeedTimeout: p.duration(EnvSnapshotSeedTimeout, DefaultSnapshotSeedTimeout)}
	v, ok := p.get(EnvSnapshotLookback)
	if !ok {
		return s
	}
	if strings.EqualFold(strings.TrimSpace(v), SnapshotEarliest) {
		s.Earliest, s.Lookback = true, 0
		return s
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail("%s: %s is not a positive duration or %s (want e.g. 24h, 30m, or %s for everything Kafka holds)", EnvSnapshotLookback, quote(v), SnapshotEarliest, SnapshotEarliest)
		return s
	}
	s.Lookback = d
	return s
}
