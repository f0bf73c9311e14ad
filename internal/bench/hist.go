package bench

import (
	"encoding/json"
	"fmt"
	"math/bits"
)

// The latency histograms are log-linear over microseconds: values below
// 2^subBits µs each have a bucket, and every power of two above is split
// into 2^subBits equal buckets, so a bucket is at most 1/32 (about 3%) of
// its value wide. Values from 2^maxExp µs (about 71 minutes) up share the
// last bucket.
const (
	subBits    = 5
	subCount   = 1 << subBits
	maxExp     = 32
	numBuckets = subCount + (maxExp-subBits)*subCount
)

func bucketOf(us uint64) int {
	if us < subCount {
		return int(us)
	}
	e := bits.Len64(us) - 1
	if e >= maxExp {
		return numBuckets - 1
	}
	return subCount + (e-subBits)*subCount + int(us>>(e-subBits)) - subCount
}

// bucketRange returns the lowest value of bucket i and its width, in µs.
func bucketRange(i int) (lo, width uint64) {
	if i < subCount {
		return uint64(i), 1
	}
	j := i - subCount
	shift := j / subCount
	return uint64(subCount+j%subCount) << shift, 1 << shift
}

// Histogram records latencies for one client goroutine without allocating.
// Its counts are 32-bit to keep it small (3.5 KiB), as there is one per
// reading client. It is not safe for concurrent use.
type Histogram struct {
	counts [numBuckets]uint32
	max    int64 // ns
}

// Record adds one latency in nanoseconds; negative values count as zero.
func (h *Histogram) Record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	if ns > h.max {
		h.max = ns
	}
	h.counts[bucketOf(uint64(ns)/1000)]++
}

// AddTo adds h's counts to d.
func (h *Histogram) AddTo(d *Dist) {
	for i, c := range h.counts {
		if c != 0 {
			d.counts[i] += uint64(c)
			d.total += uint64(c)
		}
	}
	d.max = max(d.max, h.max)
}

// Dist is a merged latency distribution with 64-bit counts. It travels
// between processes as JSON (only non-empty buckets). The zero value is
// empty. It is not safe for concurrent use.
type Dist struct {
	counts [numBuckets]uint64
	total  uint64
	max    int64 // ns
}

// Merge adds o's counts to d.
func (d *Dist) Merge(o *Dist) {
	for i, c := range o.counts {
		d.counts[i] += c
	}
	d.total += o.total
	d.max = max(d.max, o.max)
}

// Count returns the number of recorded values.
func (d *Dist) Count() uint64 { return d.total }

// Max returns the largest recorded value in nanoseconds, exactly.
func (d *Dist) Max() int64 { return d.max }

// Quantile returns the value in nanoseconds below which a fraction q of the
// recorded values fall, as the middle of its bucket (never above Max), or 0
// when d is empty.
func (d *Dist) Quantile(q float64) int64 {
	if d.total == 0 {
		return 0
	}
	rank := uint64(q * float64(d.total))
	if rank >= d.total {
		rank = d.total - 1
	}
	var seen uint64
	for i, c := range d.counts {
		seen += c
		if seen > rank {
			lo, w := bucketRange(i)
			return min(int64(lo+w/2)*1000, d.max)
		}
	}
	return d.max
}

type distJSON struct {
	Buckets [][2]uint64 `json:"buckets"` // [index, count]
	Max     int64       `json:"max_ns"`
}

// MarshalJSON encodes the non-empty buckets.
func (d *Dist) MarshalJSON() ([]byte, error) {
	j := distJSON{Buckets: [][2]uint64{}, Max: d.max}
	for i, c := range d.counts {
		if c != 0 {
			j.Buckets = append(j.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON produced.
func (d *Dist) UnmarshalJSON(b []byte) error {
	var j distJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*d = Dist{max: j.Max}
	for _, bc := range j.Buckets {
		if bc[0] >= numBuckets {
			return fmt.Errorf("bench: histogram bucket %d out of range", bc[0])
		}
		d.counts[bc[0]] += bc[1]
		d.total += bc[1]
	}
	return nil
}
