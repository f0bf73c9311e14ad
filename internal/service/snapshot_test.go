package service_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/ready"
)

// These tests hold snapshot=true to its promise with a real broker over
// TCP and real clients: the latest record of every key the client may
// see, each with the snapshot point as its cursor, then snapshot_end,
// then live from that point with nothing lost or repeated; a table that
// survives a restart (seeded from Kafka), forgets tombstoned keys and
// keeps its bound.

// snapEnd is the snapshot_end notice.
type snapEnd struct {
	Notice string `json:"notice"`
	Keys   int    `json:"keys"`
	Cursor string `json:"cursor"`
}

// readSnapshot reads a WebSocket envelope client's snapshot up to its
// snapshot_end notice, checking that every snapshot message carries the
// notice's cursor.
func readSnapshot(t *testing.T, c *e2etest.Client) ([]envMsg, snapEnd) {
	t.Helper()
	var msgs []envMsg
	for {
		b := c.Next(t)
		var end snapEnd
		if err := json.Unmarshal(b, &end); err == nil && end.Notice == "snapshot_end" {
			checkSnapshot(t, msgs, end)
			return msgs, end
		}
		msgs = append(msgs, decodeEnv(t, b))
	}
}

// checkSnapshot fails unless msgs are records, one per key, each with
// end's cursor, and end counts them.
func checkSnapshot(t *testing.T, msgs []envMsg, end snapEnd) {
	t.Helper()
	keys := map[string]bool{}
	for _, m := range msgs {
		if m.Notice != "" {
			t.Fatalf("a notice in the snapshot: %s", m.raw)
		}
		if m.Cursor != end.Cursor {
			t.Fatalf("snapshot message %s: cursor is not the snapshot point %s", m.raw, end.Cursor)
		}
		if keys[m.Key] {
			t.Fatalf("key %q twice in the snapshot", m.Key)
		}
		keys[m.Key] = true
	}
	if end.Keys != len(msgs) {
		t.Fatalf("snapshot_end says %d keys, the snapshot had %d", end.Keys, len(msgs))
	}
}

// snapshotKeys returns the snapshot's values by key.
func snapshotKeys(t *testing.T, msgs []envMsg) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range msgs {
		out[m.Key] = string(m.Value)
	}
	return out
}

// latestBelow returns, from every record of the topic (all), the latest
// value of each key below the position at.
func latestBelow(t *testing.T, all []envMsg, at wsdest.Cursor) map[string]envMsg {
	t.Helper()
	out := map[string]envMsg{}
	for _, m := range all {
		if next, _ := at.Next(m.Partition); m.Offset >= next {
			continue
		}
		if o, ok := out[m.Key]; !ok || o.Partition == m.Partition && o.Offset < m.Offset {
			out[m.Key] = m
		}
	}
	return out
}

// checkHandOver fails unless snap is the latest record of every key below
// the snapshot point end, and live continues every partition from that
// point, contiguous (every record has a key and a JSON value), with no
// record older than the point; all is every record of the topic.
func checkHandOver(t *testing.T, all, snap, live []envMsg, end snapEnd) {
	t.Helper()
	at, err := wsdest.ParseCursor(end.Cursor)
	if err != nil {
		t.Fatalf("snapshot point %q: %v", end.Cursor, err)
	}
	want := latestBelow(t, all, at)
	if len(snap) != len(want) {
		t.Fatalf("snapshot of %d keys, want %d", len(snap), len(want))
	}
	for _, m := range snap {
		w, ok := want[m.Key]
		if !ok || w.Partition != m.Partition || w.Offset != m.Offset || string(w.Value) != string(m.Value) {
			t.Fatalf("snapshot message %s, want the latest of its key below the point: %s", m.raw, w.raw)
		}
	}
	next := map[int32]int64{}
	for p := range int32(len(at.Offsets)) {
		next[p], _ = at.Next(p)
	}
	for _, m := range live {
		if m.Notice != "" {
			t.Fatalf("unexpected notice %s", m.raw)
		}
		if m.Offset != next[m.Partition] {
			t.Fatalf("partition %d after the snapshot: offset %d where %d was due", m.Partition, m.Offset, next[m.Partition])
		}
		next[m.Partition]++
	}
}

// producing produces records from `from` on, one every 5 ms, until the
// returned stop is called; stop returns the end (exclusive).
func producing(p *e2etest.Producer, from int) (stop func() int) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	i := from
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			produceN(p, i, i+1, time.Time{})
			i++
		}
	}()
	return func() int { close(done); wg.Wait(); return i }
}

// readAll reads the topic's first n records with a client from the
// earliest.
func readAll(t *testing.T, svc *e2etest.Service, n int) []envMsg {
	t.Helper()
	c := e2etest.Connect(t, svc.URL("/ws?envelope=true&from=earliest"))
	defer c.Close()
	return readEnv(t, c, n)
}

// Snapshot then live over WebSocket (envelope) and SSE while records
// flow: the snapshot is the latest record of every key as of the point,
// each message with the point as its cursor (an SSE event's id), then
// every record after the point once, in partition order; a client that
// drops right after the snapshot and resumes from its last cursor (an
// SSE client with Last-Event-ID and its original URL) continues at the
// point, with no second snapshot.
func TestSnapshotThenLive(t *testing.T) {
	b := e2etest.StartBroker(t, "snap-live", 3)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	produceN(p, 0, 60, time.Time{})
	e2etest.Eventually(t, "the table holds every key", func() bool { return svc.Stats(t).Snapshot.Keys == 6 })
	stop := producing(p, 60)

	ws := e2etest.Connect(t, svc.URL("/ws?envelope=true&snapshot=true"))
	wsSnap, wsEnd := readSnapshot(t, ws)

	sse := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?envelope=true&snapshot=true"), nil)
	var sseSnap []envMsg
	var sseEnd snapEnd
	for {
		ev := sse.Next(t)
		if json.Unmarshal([]byte(ev.Data), &sseEnd); sseEnd.Notice == "snapshot_end" {
			if ev.ID != sseEnd.Cursor {
				t.Fatalf("snapshot_end event id %q, want the point %q", ev.ID, sseEnd.Cursor)
			}
			break
		}
		m := decodeEnv(t, []byte(ev.Data))
		if ev.ID != m.Cursor {
			t.Fatalf("snapshot event id %q, its cursor %q", ev.ID, m.Cursor)
		}
		sseSnap = append(sseSnap, m)
	}
	checkSnapshot(t, sseSnap, sseEnd)

	// A WebSocket client that drops right after its snapshot.
	drop := e2etest.Connect(t, svc.URL("/ws?envelope=true&snapshot=true"))
	dropSnap, dropEnd := readSnapshot(t, drop)
	_ = drop.Close()
	time.Sleep(50 * time.Millisecond) // records flow meanwhile
	back := e2etest.Connect(t, svc.URL("/ws?envelope=true&from="+dropEnd.Cursor))
	// An SSE client that drops right after its snapshot comes back as an
	// EventSource does: the same URL, with Last-Event-ID.
	sseBack := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?envelope=true&snapshot=true"), http.Header{"Last-Event-Id": {sseEnd.Cursor}})
	sse.Close()

	end := stop()
	all := readAll(t, svc, end)
	readLive := func(next func() envMsg, at snapEnd) []envMsg {
		pos, _ := wsdest.ParseCursor(at.Cursor)
		n := 0
		for p := range int32(len(pos.Offsets)) {
			o, _ := pos.Next(p)
			n += int(o)
		}
		var live []envMsg
		for range end - n {
			live = append(live, next())
		}
		return live
	}
	t.Run("websocket", func(t *testing.T) {
		live := readLive(func() envMsg { return decodeEnv(t, ws.Next(t)) }, wsEnd)
		checkHandOver(t, all, wsSnap, live, wsEnd)
		ws.ExpectQuiet(t)
	})
	t.Run("sse resumed", func(t *testing.T) {
		live := readLive(func() envMsg {
			ev := sseBack.Next(t)
			m := decodeEnv(t, []byte(ev.Data))
			if ev.ID != m.Cursor {
				t.Fatalf("event id %q, its cursor %q", ev.ID, m.Cursor)
			}
			return m
		}, sseEnd)
		checkHandOver(t, all, sseSnap, live, sseEnd)
	})
	t.Run("websocket resumed", func(t *testing.T) {
		live := readLive(func() envMsg { return decodeEnv(t, back.Next(t)) }, dropEnd)
		checkHandOver(t, all, dropSnap, live, dropEnd)
		back.ExpectQuiet(t)
	})
}

// A plain WebSocket client gets the latest value of every key, then live
// values, with no notice.
func TestSnapshotPlain(t *testing.T) {
	b := e2etest.StartBroker(t, "snap-plain", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	produceN(p, 0, 12, time.Time{})
	e2etest.Eventually(t, "the table holds every key", func() bool { return svc.Stats(t).Snapshot.Keys == 6 })
	c := e2etest.Connect(t, svc.URL("/ws?snapshot=true"))
	var got []string
	for _, b := range c.NextN(t, 6) {
		got = append(got, string(b))
	}
	slices.Sort(got)
	if want := []string{`{"i":10}`, `{"i":11}`, `{"i":6}`, `{"i":7}`, `{"i":8}`, `{"i":9}`}; !slices.Equal(got, want) {
		t.Fatalf("plain snapshot %q, want %q", got, want)
	}
	produceN(p, 12, 13, time.Time{})
	if b := c.Next(t); string(b) != `{"i":12}` {
		t.Fatalf("after the snapshot %s, want the live record 12", b)
	}
}

// stampedRecord is a record of key stamped at ts.
func stampedRecord(key, value string, ts time.Time) *kgo.Record {
	var v []byte
	if value != "" {
		v = []byte(value)
	}
	r := e2etest.Record([]byte(key), v)
	r.Timestamp = ts
	return r
}

// A key produced once, long before a busy stretch of other keys, is in
// the snapshot; a tombstone removes its key; and a wsdest started later
// on the same broker (seeding the table from Kafka before /readyz says
// ready) serves the same snapshot, without the tombstoned key; records
// older than SNAPSHOT_LOOKBACK are not read.
func TestSnapshotQuietKeysTombstonesAndRestart(t *testing.T) {
	b := e2etest.StartBroker(t, "snap-seed", 3)
	p := e2etest.NewProducer(t, b)
	now := time.Now()
	p.ProduceRecords(
		stampedRecord("ancient", `{"v":"too old"}`, now.Add(-48*time.Hour)),
		stampedRecord("quiet", `{"v":"once"}`, now.Add(-2*time.Hour)),
		stampedRecord("gone", `{"v":"deleted soon"}`, now.Add(-2*time.Hour)),
	)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	produceN(p, 0, 300, time.Time{})
	p.ProduceRecords(e2etest.Record([]byte("gone"), nil), e2etest.Record([]byte("later-gone"), []byte(`{"v":1}`)))
	p.ProduceRecords(e2etest.Record([]byte("later-gone"), nil))
	e2etest.Eventually(t, "the table holds the keys", func() bool { return svc.Stats(t).Snapshot.Keys == 7 })

	first, _ := readSnapshot(t, e2etest.Connect(t, svc.URL("/ws?envelope=true&snapshot=true")))
	got := snapshotKeys(t, first)
	want := map[string]string{"quiet": `{"v":"once"}`}
	for i := 294; i < 300; i++ {
		want[fmt.Sprintf("k%d", i%6)] = fmt.Sprintf(`{"i":%d}`, i)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("snapshot %v, want %v", got, want)
	}

	second := e2etest.StartService(t, e2etest.BrokerEnv(b))
	second.WaitReady(t)
	if !strings.Contains(second.Log.String(), "snapshot: table seeded from Kafka") {
		t.Fatalf("no seeding line in the log:\n%s", second.Log.String())
	}
	again, _ := readSnapshot(t, e2etest.Connect(t, second.URL("/ws?envelope=true&snapshot=true")))
	if g := snapshotKeys(t, again); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("restarted: snapshot %v, want %v", g, want)
	}
	for i := range first {
		if first[i].Partition != again[i].Partition || first[i].Offset != again[i].Offset {
			t.Fatalf("restarted: snapshot message %d is %s, was %s", i, again[i].raw, first[i].raw)
		}
	}

	earliest := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{config.EnvSnapshotLookback: "earliest"}))
	earliest.WaitReady(t)
	all, _ := readSnapshot(t, e2etest.Connect(t, earliest.URL("/ws?envelope=true&snapshot=true")))
	want["ancient"] = `{"v":"too old"}`
	if g := snapshotKeys(t, all); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("SNAPSHOT_LOOKBACK=earliest: snapshot %v, want %v", g, want)
	}
}

// Until the table is seeded, /readyz answers 503 snapshot_seeding (here
// while a slow broker answers each fetch 2 s late), and then the snapshot
// holds what was read.
func TestSnapshotSeedingNotReady(t *testing.T) {
	b := e2etest.StartBroker(t, "snap-ready", 1)
	p := e2etest.NewProducer(t, b)
	produceN(p, 0, 6, time.Time{})
	delayFetches(b, 2*time.Second)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	e2etest.Eventually(t, "readiness waits for seeding", func() bool {
		return slices.ContainsFunc(svc.Svc.Readiness(), func(c ready.Condition) bool { return c.Reason == ready.SnapshotSeeding })
	})
	if code, body := svc.Get(t, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "snapshot_seeding") {
		t.Fatalf("/readyz while seeding: %d %q", code, body)
	}
	svc.WaitReady(t)
	snap, _ := readSnapshot(t, e2etest.Connect(t, svc.URL("/ws?envelope=true&snapshot=true")))
	if len(snap) != 6 {
		t.Fatalf("snapshot of %d keys after seeding, want 6", len(snap))
	}
}

// SNAPSHOT_MAX_KEYS: past the bound the least recently updated keys go,
// counted in wsdest_snapshot_evictions_total.
func TestSnapshotMaxKeys(t *testing.T) {
	b := e2etest.StartBroker(t, "snap-max", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{config.EnvSnapshotMaxKeys: "3"}))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	for _, k := range []string{"a", "b", "c", "a", "d", "e"} {
		p.ProduceRecords(e2etest.Record([]byte(k), []byte(`{"k":"`+k+`"}`)))
	}
	e2etest.Eventually(t, "two evictions", func() bool { return svc.Stats(t).Snapshot.Evictions == 2 })
	snap, _ := readSnapshot(t, e2etest.Connect(t, svc.URL("/ws?envelope=true&snapshot=true")))
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range snapshotKeys(t, snap) {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(got, []string{"a", "d", "e"}) {
		t.Fatalf("snapshot keys %q, want a, d, e (b and c least recently updated)", got)
	}
	_, body := svc.Get(t, "/metrics")
	for _, line := range []string{"wsdest_snapshot_evictions_total 2", "wsdest_snapshot_keys 3", "wsdest_snapshots_total 1"} {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Fatalf("/metrics lacks %q", line)
		}
	}
	if !strings.Contains(svc.Log.String(), "snapshot: the table is full") {
		t.Fatalf("no eviction line in the log")
	}
}

// snapshot=true with from= or last= is refused with 400 and a reason,
// and so is snapshot=true with SNAPSHOT=false.
func TestSnapshotRefused(t *testing.T) {
	b := e2etest.StartBroker(t, "snap-refused", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	off := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{config.EnvSnapshot: "false"}))
	svc.WaitReady(t)
	off.WaitReady(t)
	for _, tc := range []struct {
		svc  *e2etest.Service
		path string
		want string
	}{
		{svc, "/sse?snapshot=true&from=earliest", "cannot be combined"},
		{svc, "/sse/k1?snapshot=true&last=5", "cannot be combined"},
		{svc, "/sse?snapshot=maybe", "snapshot="},
		{off, "/sse?snapshot=true", "snapshots are off"},
	} {
		code, body := tc.svc.Get(t, tc.path)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %q, want 400 with %q", tc.path, code, body, tc.want)
		}
	}
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	_, err := e2etest.Dial(ctx, svc.URL("/ws?snapshot=true&from=earliest"))
	if de, ok := err.(*e2etest.DialError); !ok || de.Status != http.StatusBadRequest {
		t.Fatalf("WebSocket snapshot=true&from=earliest: %v, want a 400", err)
	}
}

// A key subscription, a glob and a credential's grant each get only their
// keys in the snapshot.
func TestSnapshotSubscriptionAndGrant(t *testing.T) {
	b := e2etest.StartBroker(t, "snap-keys", 3)
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("tenant-key t-a/*\nall-key *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{config.EnvAPIKeysFile: keys}))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	for _, k := range []string{"t-a/1", "t-a/2", "t-b/1", "other"} {
		p.ProduceRecords(e2etest.Record([]byte(k), []byte(`{"k":"`+k+`"}`)))
	}
	e2etest.Eventually(t, "the table holds every key", func() bool { return svc.Stats(t).Snapshot.Keys == 4 })
	for _, tc := range []struct {
		path, key string
		want      []string
	}{
		{"/ws/t-b/1?envelope=true&snapshot=true", "all-key", []string{"t-b/1"}},
		{"/ws?key=t-*&envelope=true&snapshot=true", "all-key", []string{"t-a/1", "t-a/2", "t-b/1"}},
		{"/ws?envelope=true&snapshot=true", "tenant-key", []string{"t-a/1", "t-a/2"}},
		{"/ws?key=t-*&key=o*&envelope=true&snapshot=true", "tenant-key", []string{"t-a/1", "t-a/2"}},
	} {
		c := e2etest.Connect(t, svc.URL(tc.path), e2etest.WithBearer(tc.key))
		snap, _ := readSnapshot(t, c)
		var got []string
		for k := range snapshotKeys(t, snap) {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s with %s: snapshot keys %q, want %q", tc.path, tc.key, got, tc.want)
		}
	}
}

// A record of many Quix rows counts as its last row for its key.
func TestSnapshotQuixRows(t *testing.T) {
	b := e2etest.StartBroker(t, "snap-rows", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	p.ProduceRecords(e2etest.Record([]byte("multi"),
		[]byte(`{"C":"JT","K":"ParameterData","V":{"NumericValues":{"a":[1,2,3]},"Timestamps":[1796167464325734270,1796167464325734271,1796167464325734272]}}`)))
	e2etest.Eventually(t, "the table holds the key", func() bool { return svc.Stats(t).Snapshot.Keys == 1 })
	snap, end := readSnapshot(t, e2etest.Connect(t, svc.URL("/ws?envelope=true&snapshot=true")))
	if len(snap) != 1 || !strings.Contains(string(snap[0].Value), `"a":3`) || !strings.Contains(string(snap[0].Value), "1796167464325734272") {
		var raw []string
		for _, m := range snap {
			raw = append(raw, m.raw)
		}
		t.Fatalf("snapshot %q (end %+v), want the last row alone", raw, end)
	}
}

// A snapshot goes through the client's view: a key whose latest record
// the filter drops is left out (an older record of it that would pass is
// not brought back), and the others are projected, each with the
// snapshot point as its cursor; live records follow through the view.
func TestSnapshotWithView(t *testing.T) {
	b := e2etest.StartBroker(t, "snap-view", 2)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	for _, r := range [][2]string{
		{"a", `{"t":9,"x":1}`}, {"b", `{"t":7,"x":2}`}, {"c", `{"t":1,"x":3}`}, {"b", `{"t":2,"x":4}`},
	} {
		p.ProduceRecords(e2etest.Record([]byte(r[0]), []byte(r[1])))
	}
	e2etest.Eventually(t, "the table holds every key", func() bool { return svc.Stats(t).Snapshot.Keys == 3 })
	watch := e2etest.Connect(t, svc.URL("/ws/c"))
	for _, path := range []string{
		"/ws?envelope=true&snapshot=true&where=" + url.QueryEscape("value.t > 5") + "&fields=t",
		"/ws?envelope=true&snapshot=true&fields=t",
	} {
		c := e2etest.Connect(t, svc.URL(path))
		snap, _ := readSnapshot(t, c)
		got := snapshotKeys(t, snap)
		want := map[string]string{"a": `{"t":9}`}
		if !strings.Contains(path, "where") {
			want = map[string]string{"a": `{"t":9}`, "b": `{"t":2}`, "c": `{"t":1}`}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: snapshot %v, want %v", path, got, want)
		}
		p.ProduceRecords(e2etest.Record([]byte("c"), []byte(`{"t":8,"x":5}`)))
		if m := decodeEnv(t, c.Next(t)); m.Key != "c" || string(m.Value) != `{"t":8}` {
			t.Fatalf("%s: after the snapshot %s, want c's live record projected", path, m.raw)
		}
		p.ProduceRecords(e2etest.Record([]byte("c"), []byte(`{"t":1,"x":6}`)))
		watch.NextN(t, 2) // c's two records are published: the table has the second
	}
}
