package bench

import (
	"slices"
	"testing"
)

func TestFinalSeqsAndMissingKeys(t *testing.T) {
	tests := []struct {
		sent    int64
		keys    int
		final   []uint32
		got     []uint32
		missing int
	}{
		{sent: 10, keys: 3, final: []uint32{10, 8, 9}, got: []uint32{10, 8, 9}},
		{sent: 10, keys: 3, final: []uint32{10, 8, 9}, got: []uint32{7, 8, 0}, missing: 2},
		{sent: 2, keys: 3, final: []uint32{1, 2, 0}, got: []uint32{1, 2, 0}},
		{sent: 0, keys: 2, final: []uint32{0, 0}, got: nil},
		{sent: 4, keys: 2, final: []uint32{3, 4}, got: nil, missing: 2},
	}
	for _, tt := range tests {
		f := finalSeqs(tt.sent, tt.keys)
		if !slices.Equal(f, tt.final) {
			t.Errorf("finalSeqs(%d, %d) = %v, want %v", tt.sent, tt.keys, f, tt.final)
		}
		if n := missingKeys(tt.got, f); n != tt.missing {
			t.Errorf("missingKeys(%v, %v) = %d, want %d", tt.got, f, n, tt.missing)
		}
	}
}

// The merged figures are the worst client's: the shortest gap, and per key
// the lowest last record.
func TestMergeLatest(t *testing.T) {
	var r GroupResult
	r.mergeLatest(0, nil)
	r.mergeLatest(500, []uint32{5, 9})
	r.mergeLatest(300, []uint32{7, 2})
	r.mergeLatest(0, []uint32{6, 8})
	var o GroupResult
	o.mergeLatest(400, []uint32{1, 9})
	r.merge(&o)
	if r.MinKeyGapNs != 300 || !slices.Equal(r.LastSeqMin, []uint32{1, 2}) {
		t.Fatalf("merged %d %v, want 300 [1 2]", r.MinKeyGapNs, r.LastSeqMin)
	}
}

func TestWithQuery(t *testing.T) {
	got, err := withQuery("ws://127.0.0.1:8000/ws/{key}?envelope=false", "max_rate", "0.5")
	if err != nil || got != "ws://127.0.0.1:8000/ws/{key}?envelope=false&max_rate=0.5" {
		t.Fatalf("got %q, %v", got, err)
	}
}
