package bench

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestViewQuery(t *testing.T) {
	if q := viewQuery(3, 0, 0); q != "" {
		t.Fatalf("no views: %q", q)
	}
	// 100 filters x 10 projections over 1,000 clients: 1,000 distinct views.
	seen := map[string]bool{}
	for i := range 1000 {
		q, err := url.ParseQuery(viewQuery(i, 100, 10))
		if err != nil {
			t.Fatal(err)
		}
		f := q.Get("fields")
		if !strings.HasPrefix(f, "ts,seq,") || !strings.HasPrefix(q.Get("where"), "value.temperature > -") {
			t.Fatalf("client %d: %v", i, q)
		}
		seen[q.Encode()] = true
	}
	if len(seen) != 1000 {
		t.Fatalf("%d distinct views, want 1000", len(seen))
	}
	seen = map[string]bool{}
	for i := range 60 {
		seen[viewQuery(i, 0, 30)] = true
	}
	if len(seen) != 30 {
		t.Fatalf("%d distinct projections of 30", len(seen))
	}
	if u := appendQuery("ws://h/ws?key=a", "x=1"); u != "ws://h/ws?key=a&x=1" {
		t.Fatal(u)
	}
}

func TestAppendTelemetry(t *testing.T) {
	for _, size := range []int{0, 300, 1000} {
		b := AppendTelemetry(nil, 1700000000000000000, 12345, size)
		var v struct {
			TS, Seq     int64
			Temperature float64
			Tags        struct{ Location string }
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("size %d: %s: %v", size, b, err)
		}
		if v.TS != 1700000000000000000 || v.Seq != 12345 || v.Temperature < 0 || v.Tags.Location == "" || size >= 300 && len(b) != size {
			t.Fatalf("size %d: %s", size, b)
		}
		if ts, seq, ok := scanTsSeq(b); !ok || ts != v.TS || seq != v.Seq {
			t.Fatalf("the clients cannot read ts and seq back: %s", b)
		}
	}
}
