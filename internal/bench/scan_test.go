package bench

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAppendValue(t *testing.T) {
	for _, size := range []int{0, 10, 40, 41, 100, 5000} {
		v := AppendValue([]byte("prefix"), 1700000000123456789, 42, size)[len("prefix"):]
		var got struct {
			TS  int64  `json:"ts"`
			Seq int64  `json:"seq"`
			Pad string `json:"pad"`
		}
		if err := json.Unmarshal(v, &got); err != nil {
			t.Fatalf("size %d: %q: %v", size, v, err)
		}
		if got.TS != 1700000000123456789 || got.Seq != 42 {
			t.Errorf("size %d: decoded %+v", size, got)
		}
		if min := len(`{"ts":1700000000123456789,"seq":42,"pad":""}`); len(v) != max(size, min) {
			t.Errorf("size %d: value is %d bytes", size, len(v))
		}
	}
}

func TestScanTsSeq(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		ts, seq int64
		ok      bool
	}{
		{"plain", `{"ts":123,"seq":4,"pad":"xx"}`, 123, 4, true},
		{"spaces", `{"ts": 123, "seq" : 4}`, 123, 4, true},
		{"envelope", `{"topic":"input","key":"k-1","value":{"ts":9,"seq":10,"pad":""},"offset":3}`, 9, 10, true},
		{"escaped string", `{"value":"{\"ts\":77,\"seq\":8,\"pad\":\"\"}"}`, 77, 8, true},
		{"lookalike keys first", `{"counts":1,"tsx":2,"ts":3,"seqs":4,"seq":5}`, 3, 5, true},
		{"ts without seq", `{"ts":1}`, 0, 0, false},
		{"not a number", `{"ts":"x","seq":1}`, 0, 0, false},
		{"other data", `{"Timestamp":1,"temperature":2}`, 0, 0, false},
		{"empty", ``, 0, 0, false},
		{"truncated", `{"ts":`, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, seq, ok := scanTsSeq([]byte(tt.in))
			if ok != tt.ok || (ok && (ts != tt.ts || seq != tt.seq)) {
				t.Errorf("scanTsSeq(%s) = %d, %d, %v", tt.in, ts, seq, ok)
			}
		})
	}
}

func FuzzScanTsSeq(f *testing.F) {
	f.Add([]byte(`{"ts":123,"seq":4}`))
	f.Add([]byte(`{"value":"{\"ts\":77,\"seq\":8}"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, seq, ok := scanTsSeq(b)
		if ok && (ts < 0 || seq < 0) {
			t.Fatalf("negative numbers from %q", b)
		}
		if ok && !strings.Contains(string(b), "ts") {
			t.Fatalf("found ts in %q", b)
		}
	})
}

func BenchmarkScanTsSeq(b *testing.B) {
	v := AppendValue(nil, 1700000000123456789, 123456, 200)
	b.ReportAllocs()
	for b.Loop() {
		scanTsSeq(v)
	}
}
