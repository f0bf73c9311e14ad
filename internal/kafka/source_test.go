package kafka

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wsdest/wsdest"
)

func TestRecordsArriveIntact(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "t"))
	p := newProducer(t, c.ListenAddrs())
	r := startSource(t, Config{Brokers: c.ListenAddrs(), Topic: "t", ResetLatest: true})
	eventually(t, "ready", r.src.Ready)

	// Timestamps in the future cannot fall before the start offset,
	// however the start-up and the produce calls interleave.
	ts := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	want := []*kgo.Record{
		{Topic: "t", Partition: 2, Key: []byte("k2"), Value: []byte(`{"p":2}`), Timestamp: ts},
		{Topic: "t", Partition: 0, Key: []byte("k0"), Value: []byte(`{"n":0}`), Timestamp: ts.Add(time.Millisecond),
			Headers: []kgo.RecordHeader{{Key: "__Q_ModelKey", Value: []byte("TimeseriesData")}, {Key: "__Q_CodecId", Value: []byte("JT")}, {Key: "dup", Value: nil}}},
		{Topic: "t", Partition: 0, Key: nil, Value: []byte(`{"n":1}`), Timestamp: ts.Add(2 * time.Millisecond)},
		{Topic: "t", Partition: 0, Key: []byte{}, Value: nil, Timestamp: ts.Add(3 * time.Millisecond)},
		{Topic: "t", Partition: 1, Key: []byte("k1"), Value: []byte{}, Timestamp: ts.Add(4 * time.Millisecond)},
	}
	produce(t, p, want...)

	got := map[int32][]*wsdest.Record{}
	for range want {
		rec := r.next(t)
		got[rec.Partition] = append(got[rec.Partition], rec)
	}
	perPartition := map[int32][]*kgo.Record{}
	for _, w := range want {
		perPartition[w.Partition] = append(perPartition[w.Partition], w)
	}
	for part, ws := range perPartition {
		gs := got[part]
		if len(gs) != len(ws) {
			t.Fatalf("partition %d: got %d records, want %d", part, len(gs), len(ws))
		}
		for i, w := range ws {
			g := gs[i]
			if g.Topic != "t" || g.Partition != part || g.Offset != int64(i) {
				t.Errorf("p%d #%d: at %s/%d@%d, want t/%d@%d", part, i, g.Topic, g.Partition, g.Offset, part, i)
			}
			if !g.Timestamp.Equal(w.Timestamp) {
				t.Errorf("p%d #%d: timestamp %v, want %v", part, i, g.Timestamp, w.Timestamp)
			}
			if !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) {
				t.Errorf("p%d #%d: key %#v, want %#v", part, i, g.Key, w.Key)
			}
			if !bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) {
				t.Errorf("p%d #%d: value %#v, want %#v", part, i, g.Value, w.Value)
			}
			if len(g.Headers) != len(w.Headers) {
				t.Fatalf("p%d #%d: %d headers, want %d", part, i, len(g.Headers), len(w.Headers))
			}
			for j, h := range w.Headers {
				if g.Headers[j].Key != h.Key || !bytes.Equal(g.Headers[j].Value, h.Value) {
					t.Errorf("p%d #%d: header %d = %q:%q, want %q:%q", part, i, j, g.Headers[j].Key, g.Headers[j].Value, h.Key, h.Value)
				}
			}
		}
	}
}

func TestStartOffset(t *testing.T) {
	for _, latest := range []bool{true, false} {
		t.Run(fmt.Sprintf("latest=%v", latest), func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(2, "t"))
			p := newProducer(t, c.ListenAddrs())
			old := time.Now().Add(-time.Minute)
			produce(t, p,
				&kgo.Record{Topic: "t", Partition: 0, Value: []byte("old0"), Timestamp: old},
				&kgo.Record{Topic: "t", Partition: 1, Value: []byte("old1"), Timestamp: old},
			)
			r := startSource(t, Config{Brokers: c.ListenAddrs(), Topic: "t", ResetLatest: latest})
			produce(t, p, &kgo.Record{Topic: "t", Partition: 0, Value: []byte("new")})

			var got []string
			want := []string{"new"}
			if !latest {
				want = []string{"old0", "old1", "new"}
			}
			for range want {
				got = append(got, string(r.next(t).Value))
			}
			// Partitions are read independently; only "new" after "old0"
			// (same partition) is ordered.
			if latest && got[0] != "new" {
				t.Errorf("latest: first record %q, want new", got[0])
			}
			if !latest && (indexOf(got, "old0") > indexOf(got, "new") || indexOf(got, "old1") < 0) {
				t.Errorf("earliest: got %q, want old0 before new and old1", got)
			}
			select {
			case extra := <-r.recs:
				t.Errorf("unexpected record %q", extra.Value)
			default:
			}
		})
	}
}

func indexOf(ss []string, s string) int {
	for i, v := range ss {
		if v == s {
			return i
		}
	}
	return -1
}

// TestAddedPartitionReadFromStart adds a partition and produces to it at
// once, long before the consumer's next metadata refresh reveals it: the
// records must still arrive, from offset 0.
func TestAddedPartitionReadFromStart(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	p := newProducer(t, c.ListenAddrs())
	r := startSource(t, Config{Brokers: c.ListenAddrs(), Topic: "t", ResetLatest: true, metadataMaxAge: time.Second})
	eventually(t, "ready", r.src.Ready)
	produce(t, p, &kgo.Record{Topic: "t", Partition: 0, Value: []byte("p0")})
	if got := r.next(t); string(got.Value) != "p0" {
		t.Fatalf("got %q, want p0", got.Value)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	resp, err := kadm.NewClient(p).CreatePartitions(ctx, 1, "t")
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	p.ForceMetadataRefresh()
	eventually(t, "producer sees partition 1", func() bool {
		leader, _, _ := p.PartitionLeader("t", 1)
		return leader >= 0
	})
	produce(t, p,
		&kgo.Record{Topic: "t", Partition: 1, Value: []byte("a")},
		&kgo.Record{Topic: "t", Partition: 1, Value: []byte("b")},
	)
	for i, want := range []string{"a", "b"} {
		got := r.next(t)
		if got.Partition != 1 || got.Offset != int64(i) || string(got.Value) != want {
			t.Errorf("got %q at %d@%d, want %q at 1@%d", got.Value, got.Partition, got.Offset, want, i)
		}
	}
}

func TestConsumerGroup(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	p := newProducer(t, c.ListenAddrs())
	produce(t, p,
		&kgo.Record{Topic: "t", Partition: 0, Value: []byte("a")},
		&kgo.Record{Topic: "t", Partition: 1, Value: []byte("b")},
	)
	cfg := Config{Brokers: c.ListenAddrs(), Topic: "t", Group: "g", ResetLatest: false}

	r := startSource(t, cfg)
	eventually(t, "ready", r.src.Ready)
	got := map[string]bool{}
	for range 2 {
		got[string(r.next(t).Value)] = true
	}
	if !got["a"] || !got["b"] {
		t.Fatalf("first member got %v, want a and b", got)
	}
	r.stop() // leaves the group, committing what it consumed

	produce(t, p, &kgo.Record{Topic: "t", Partition: 1, Value: []byte("c")})
	r2 := startSource(t, cfg)
	if rec := r2.next(t); string(rec.Value) != "c" {
		t.Errorf("second member got %q first, want c (a and b were committed)", rec.Value)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	lags, err := kadm.NewClient(p).FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := lags.Lookup("t", 0); !ok || o.At != 1 {
		t.Errorf("committed offset of t/0 = %+v, want 1", o)
	}
}

// TestConsumerGroupLatest: a new group starts where records are stamped
// after start-up. The "new" record is produced before the consumer starts
// (stamped in the future) so that the test does not depend on when the
// group's offsets are listed.
func TestConsumerGroupLatest(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	p := newProducer(t, c.ListenAddrs())
	produce(t, p,
		&kgo.Record{Topic: "t", Value: []byte("old"), Timestamp: time.Now().Add(-time.Minute)},
		&kgo.Record{Topic: "t", Value: []byte("new"), Timestamp: time.Now().Add(time.Hour)},
	)
	r := startSource(t, Config{Brokers: c.ListenAddrs(), Topic: "t", Group: "g", ResetLatest: true})
	if got := r.next(t); string(got.Value) != "new" || got.Offset != 1 {
		t.Errorf("got %q@%d, want new@1", got.Value, got.Offset)
	}
}

func TestTopicMissingThenCreated(t *testing.T) {
	c := newCluster(t)
	r := startSource(t, Config{Brokers: c.ListenAddrs(), Topic: "later", ResetLatest: true, metadataMinAge: 50 * time.Millisecond, watchEvery: 10 * time.Millisecond})

	eventually(t, "missing-topic warning", func() bool { return len(r.log.Lines("does not exist yet")) > 0 })
	if r.src.Ready() {
		t.Error("Ready with the topic missing")
	}

	p := newProducer(t, c.ListenAddrs())
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := kadm.NewClient(p).CreateTopic(ctx, 2, 1, nil, "later"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready", r.src.Ready)
	produce(t, p, &kgo.Record{Topic: "later", Partition: 1, Value: []byte("x")})
	if got := r.next(t); string(got.Value) != "x" {
		t.Errorf("got %q, want x", got.Value)
	}
	eventually(t, "topic-exists line", func() bool { return len(r.log.Lines("exists now")) > 0 })

	if n := len(r.log.Lines("does not exist yet")); n != 1 {
		t.Errorf("%d missing-topic lines, want 1:\n%s", n, r.log)
	}
	if l := r.log.Lines("does not exist yet")[0]; !strings.Contains(l, "level=WARN") || !strings.Contains(l, "kafka topic later does not exist yet; waiting") {
		t.Errorf("missing-topic line %q", l)
	}
}

// TestBrokerRestart stops the broker and starts an empty one on the same
// port, as a dev broker restart does: the topic comes back under a new id
// with its offsets starting over.
func TestBrokerRestart(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	addrs := c.ListenAddrs()
	_, port, err := splitHP(addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	r := startSource(t, Config{Brokers: addrs, Topic: "t", ResetLatest: true, metadataMinAge: 100 * time.Millisecond})
	eventually(t, "ready", r.src.Ready)

	p := newProducer(t, addrs)
	for i := range 5 {
		produce(t, p, &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "before-%d", i)})
		r.next(t)
	}

	c.Close()
	eventually(t, "not ready", func() bool { return !r.src.Ready() })

	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	eventually(t, "ready again", r.src.Ready)

	p2 := newProducer(t, addrs) // the old producer holds the old topic id
	for i := range 3 {
		produce(t, p2, &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "after-%d", i)})
	}
	for i := range 3 {
		got := r.next(t)
		if want := fmt.Sprintf("after-%d", i); string(got.Value) != want || got.Offset != int64(i) {
			t.Errorf("got %q@%d, want %q@%d", got.Value, got.Offset, want, i)
		}
	}

	r.stop()
	if n := len(r.log.Lines("unreachable")); n != 1 {
		t.Errorf("%d unreachable lines, want 1:\n%s", n, r.log)
	}
	if n := len(r.log.Lines("reachable again")); n != 1 {
		t.Errorf("%d reachable-again lines, want 1:\n%s", n, r.log)
	}
	if l := r.log.Lines("unreachable"); len(l) == 1 && !strings.Contains(l[0], "level=WARN") {
		t.Errorf("unreachable line is not a warning: %s", l[0])
	}
	if l := r.log.Lines("reachable again"); len(l) == 1 && !strings.Contains(l[0], "outage=") {
		t.Errorf("reachable-again line lacks the outage: %s", l[0])
	}
}

// TestUnreachableAtStart never gets a broker: one warning, not ready, and
// Run still returns cleanly.
func TestUnreachableAtStart(t *testing.T) {
	c := newCluster(t)
	addrs := c.ListenAddrs()
	c.Close()
	r := startSource(t, Config{Brokers: addrs, Topic: "t", ResetLatest: true})
	eventually(t, "unreachable warning", func() bool { return len(r.log.Lines("unreachable")) > 0 })
	if r.src.Ready() {
		t.Error("Ready without a broker")
	}
	r.stop()
	if n := len(r.log.Lines("unreachable")); n != 1 {
		t.Errorf("%d unreachable lines, want 1:\n%s", n, r.log)
	}
}

// TestRequestFailures makes the broker fail every fetch for a while through
// kfake's control hooks; the consumer keeps going once they stop.
func TestRequestFailures(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	p := newProducer(t, c.ListenAddrs())
	r := startSource(t, Config{Brokers: c.ListenAddrs(), Topic: "t", ResetLatest: true})
	eventually(t, "ready", r.src.Ready)
	produce(t, p, &kgo.Record{Topic: "t", Value: []byte("1")})
	r.next(t)

	failed := make(chan struct{}, 1)
	c.KeepControl()
	c.ControlKey(1, func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case failed <- struct{}{}:
		default:
		}
		return nil, fmt.Errorf("injected fetch failure"), true
	})
	produce(t, p, &kgo.Record{Topic: "t", Value: []byte("2")})
	select {
	case <-failed:
	case <-time.After(waitFor):
		t.Fatal("no fetch reached the control function")
	}
	c.DropControl()
	if got := r.next(t); string(got.Value) != "2" {
		t.Errorf("got %q after failures, want 2", got.Value)
	}
}

func TestCloseTwiceAndRunAfterClose(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	src, err := NewSource(Config{Brokers: c.ListenAddrs(), Topic: "t"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	src.Close()
	if err := src.Run(context.Background(), func([]*wsdest.Record) { t.Error("sink called") }); err != nil {
		t.Errorf("Run after Close = %v, want nil", err)
	}
}

func TestNewSourceRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no brokers", Config{Topic: "t"}, "kafka: no broker address"},
		{"no topic", Config{Brokers: []string{"127.0.0.1:1"}}, "kafka: no topic"},
		{"bad mechanism", Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", SASL: &SASL{Mechanism: "GSSAPI", Password: "pw"}},
			`kafka: SASL mechanism "GSSAPI" is not supported (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSource(tt.cfg, slog.New(slog.DiscardHandler))
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestSASLStringHidesPassword(t *testing.T) {
	s := SASL{Mechanism: MechanismPlain, Username: "u", Password: "hunter2"}
	for _, out := range []string{s.String(), fmt.Sprint(s), fmt.Sprintf("%v", &s), fmt.Sprintf("%+v", Config{SASL: &s})} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("%q shows the password", out)
		}
	}
}

// TestStartupLatency measures how long the first record takes to arrive
// after NewSource. It asserts only a generous bound; the figure is logged.
func TestStartupLatency(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "t"))
	p := newProducer(t, c.ListenAddrs())
	start := time.Now()
	r := startSource(t, Config{Brokers: c.ListenAddrs(), Topic: "t", ResetLatest: true})
	produce(t, p, &kgo.Record{Topic: "t", Partition: 1, Value: []byte("first")})
	r.next(t)
	t.Logf("first record delivered %v after start-up", time.Since(start))
}

// Record shares the record's bytes; the headers of several records share
// the array passed in, each with its own length and capacity, or get their
// own without one.
func TestRecordConversion(t *testing.T) {
	ts := time.UnixMilli(1700000000000)
	kr := func(hs ...string) *kgo.Record {
		r := &kgo.Record{Topic: "t", Partition: 3, Offset: 9, Timestamp: ts, Key: []byte("k"), Value: []byte("v")}
		for _, h := range hs {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h, Value: []byte(h + "!")})
		}
		return r
	}
	var hdrs []wsdest.Header
	a := Record(kr("a", "b"), &hdrs)
	b := Record(kr("c"), &hdrs)
	own := Record(kr("d"), nil)
	none := Record(kr(), &hdrs)
	if a.Topic != "t" || a.Partition != 3 || a.Offset != 9 || !a.Timestamp.Equal(ts) || string(a.Key) != "k" || string(a.Value) != "v" {
		t.Fatalf("fields: %+v", a)
	}
	if len(a.Headers) != 2 || cap(a.Headers) != 2 || a.Headers[1].Key != "b" || string(a.Headers[1].Value) != "b!" {
		t.Errorf("a's headers %+v (cap %d)", a.Headers, cap(a.Headers))
	}
	if len(b.Headers) != 1 || b.Headers[0].Key != "c" || &b.Headers[0] != &hdrs[2] {
		t.Errorf("b's headers %+v not in the shared array", b.Headers)
	}
	if len(own.Headers) != 1 || own.Headers[0].Key != "d" || len(hdrs) != 3 {
		t.Errorf("own headers %+v, shared array %d long", own.Headers, len(hdrs))
	}
	if none.Headers != nil {
		t.Errorf("no headers: %+v", none.Headers)
	}
}
