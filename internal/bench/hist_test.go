package bench

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prevLo := uint64(0)
	for i := range numBuckets {
		lo, w := bucketRange(i)
		if i > 0 && lo <= prevLo {
			t.Fatalf("bucket %d starts at %d, not above bucket %d at %d", i, lo, i-1, prevLo)
		}
		prevLo = lo
		for _, v := range []uint64{lo, lo + w/2, lo + w - 1} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		if lo >= subCount && float64(w)/float64(lo) > 1.0/subCount+1e-12 {
			t.Fatalf("bucket %d [%d,+%d) wider than 1/%d of its value", i, lo, w, subCount)
		}
	}
	if got := bucketOf(1 << 40); got != numBuckets-1 {
		t.Errorf("huge value in bucket %d", got)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values func(record func(time.Duration))
		q      map[float64]time.Duration
		max    time.Duration
	}{
		{"uniform 1..1000ms", func(rec func(time.Duration)) {
			for i := 1; i <= 1000; i++ {
				rec(time.Duration(i) * time.Millisecond)
			}
		}, map[float64]time.Duration{0.5: 500 * time.Millisecond, 0.9: 900 * time.Millisecond, 0.99: 990 * time.Millisecond}, time.Second},
		{"constant", func(rec func(time.Duration)) {
			for range 100 {
				rec(1234 * time.Microsecond)
			}
		}, map[float64]time.Duration{0.5: 1234 * time.Microsecond, 0.99: 1234 * time.Microsecond}, 1234 * time.Microsecond},
		{"sub-microsecond and negative", func(rec func(time.Duration)) {
			rec(-5)
			rec(999)
		}, map[float64]time.Duration{0.5: 0}, 999},
		{"tail", func(rec func(time.Duration)) {
			for range 990 {
				rec(time.Millisecond)
			}
			for range 10 {
				rec(time.Second)
			}
		}, map[float64]time.Duration{0.5: time.Millisecond, 0.99: time.Second}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Spread over two histograms, to exercise the merge too.
			var h [2]Histogram
			n := 0
			tt.values(func(d time.Duration) { h[n%2].Record(int64(d)); n++ })
			var d Dist
			h[0].AddTo(&d)
			var d1 Dist
			h[1].AddTo(&d1)
			d.Merge(&d1)
			if d.Count() != uint64(n) {
				t.Fatalf("count %d, want %d", d.Count(), n)
			}
			if d.Max() != int64(tt.max) {
				t.Errorf("max %v, want %v", time.Duration(d.Max()), tt.max)
			}
			for q, want := range tt.q {
				got := d.Quantile(q)
				if math.Abs(float64(got)-float64(want)) > float64(want)/subCount+1000 {
					t.Errorf("q%.2f = %v, want %v within 1/%d", q, time.Duration(got), want, subCount)
				}
			}
		})
	}
	var empty Dist
	if empty.Quantile(0.5) != 0 || empty.Max() != 0 {
		t.Error("empty distribution has values")
	}
}

func TestDistJSON(t *testing.T) {
	var h Histogram
	for i := range 5000 {
		h.Record(int64(i) * 7919)
	}
	var d Dist
	h.AddTo(&d)
	b, err := json.Marshal(&d)
	if err != nil {
		t.Fatal(err)
	}
	var back Dist
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != d {
		t.Fatal("distribution changed in a JSON round trip")
	}
	if err := json.Unmarshal([]byte(`{"buckets":[[100000,1]]}`), &back); err == nil {
		t.Error("out of range bucket accepted")
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	v := int64(1)
	for b.Loop() {
		v = v*6364136223846793005 + 1442695040888963407
		h.Record(v >> 34)
	}
}
