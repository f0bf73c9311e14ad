package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// nullConn takes every write at once and keeps nothing.
type nullConn struct{ net.Conn }

func (nullConn) Write(b []byte) (int, error)      { return len(b), nil }
func (nullConn) SetWriteDeadline(time.Time) error { return nil }
func (nullConn) Close() error                     { return nil }

// slowConn takes len(b)/bps seconds (fake time, inside a synctest
// bubble) per write.
type slowConn struct {
	timedConn
	bps float64
}

func (s *slowConn) Write(b []byte) (int, error) {
	time.Sleep(time.Duration(float64(len(b)) / s.bps * float64(time.Second)))
	return s.timedConn.Write(b)
}

// A notice published behind a rated client's pending record (a reset:
// the topic was recreated) keeps its place: the old topic's record comes
// before it, the new topic's after.
func TestRateNoticeKeepsItsPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
		rc := &timedConn{}
		h.AddClient(rc, ClientOptions{Sub: Subscription{All: true, MaxRate: 1, Shape: message.ShapeEnvelope}})
		h.Publish([]*message.Message{ratedMsg("a", 0)})
		h.Publish([]*message.Message{ratedMsg("a", 1)}) // the old topic's, held
		h.Publish([]*message.Message{envNotice(`{"notice":"reset"}`), ratedMsg("b", 2)})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		var texts []string
		for _, d := range rc.deliveries() {
			texts = append(texts, d.text)
		}
		want := []string{`{"env":{"k":"a","i":0}}`, `{"env":{"k":"a","i":1}}`, `{"notice":"reset"}`, `{"env":{"k":"b","i":2}}`}
		if fmt.Sprint(texts) != fmt.Sprint(want) {
			t.Fatalf("got %q, want %q", texts, want)
		}
	})
}

// When a client starts conflating, the notices it had queued keep their
// places among the records folded into the pending set.
func TestConflationNoticeKeepsItsPlace(t *testing.T) {
	h := New(Config{MaxQueueBytes: 4 << 10, Conflate: true, WriteTimeout: time.Hour, PingInterval: -1,
		ConflatedNotice: envNotice(`{"notice":"conflated"}`), CaughtUpNotice: envNotice(`{"notice":"caught_up"}`)})
	c := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, Shape: message.ShapeEnvelope}})
	pad := strings.Repeat("x", 600)
	var old []*message.Message
	for i := range 10 {
		old = append(old, msg(fmt.Sprintf("k%d", i%2), fmt.Sprintf(`{"k":"k%d","i":%d,"p":%q}`, i%2, i, pad)))
	}
	h.Publish(old) // 6 KiB, queued whole
	h.Publish([]*message.Message{ratedMsg("k10", 10)})
	h.Publish([]*message.Message{envNotice(`{"notice":"reset"}`), ratedMsg("new", 100)}) // conflates
	p := &peer{}
	srv, cli := net.Pipe()
	p.conn = cli
	c.Attach(srv)
	texts := readAll(t, p, `{"notice":"caught_up"}`)
	want := []string{`{"notice":"conflated"}`, `"i":8`, `"i":9`, `"i":10`, `{"notice":"reset"}`, `"i":100`, `{"notice":"caught_up"}`}
	if len(texts) != len(want) {
		t.Fatalf("got %d frames %.300q, want %q", len(texts), texts, want)
	}
	for i, w := range want {
		if !strings.Contains(texts[i], w) {
			t.Fatalf("frame %d is %.80q, want %q (all: %.300q)", i, texts[i], w, texts)
		}
	}
}

// A rated client's memory of which keys it sent within the window is
// bounded by MaxQueueBytes, however many distinct keys the topic has: the
// oldest generation is dropped whole, and publishing stays O(1) per
// message under the client's lock.
func TestRateStateBoundedByKeys(t *testing.T) {
	const bound = 64 << 10
	h := New(Config{MaxQueueBytes: bound, PingInterval: -1, WriteTimeout: time.Hour})
	c := h.AddClient(nullConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: 0.1}})
	key := strings.Repeat("K", 200)
	const n = 20_000
	batch := make([]*message.Message, 0, 500)
	for i := range n {
		batch = append(batch, msg(fmt.Sprintf("%s%d", key, i), `1`))
		if len(batch) == cap(batch) {
			h.Publish(batch)
			batch = batch[:0]
			w := uint64(i + 1)
			spinUntil(func() bool { return h.Stats().Written == w })
		}
	}
	if !spinUntil(func() bool { return h.Stats().Written == n }) {
		t.Fatalf("%d of %d written", h.Stats().Written, n)
	}
	g := c.sub.rate()
	g.mu.Lock()
	keys := len(g.l.sentNew) + len(g.l.sentOld) + len(g.l.keys)
	g.mu.Unlock()
	closing := c.isClosing()
	if closing {
		t.Fatal("a client reading at once was closed")
	}
	if per := len(key) + 5 + sentEntryCost; keys*per > 2*bound {
		t.Fatalf("rated client remembers %d keys (~%d KiB) against a %d KiB bound", keys, keys*per>>10, bound>>10)
	}
}

// A rated client that reads at once is not closed when many keys wait
// behind one key's window (head of line): over MaxQueueBytes its pending
// set is handed over ahead of the windows, in publish order, and it is
// served as an unrated client is, with or without conflation.
func TestRateGivesWayToTheBound(t *testing.T) {
	for _, conflate := range []bool{false, true} {
		t.Run(fmt.Sprint("conflate=", conflate), func(t *testing.T) {
			h := New(Config{MaxQueueBytes: 64 << 10, Conflate: conflate, PingInterval: -1, WriteTimeout: time.Hour})
			rated := h.AddClient(nullConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: 0.1}})
			pad := strings.Repeat("x", 300)
			h.Publish([]*message.Message{ratedMsg("hot", 0)})
			h.Publish([]*message.Message{ratedMsg("hot", 1)}) // held for 10 s
			const n = 300
			for i := range n {
				h.Publish([]*message.Message{msg(fmt.Sprintf("cold%d", i), fmt.Sprintf(`{"i":%d,"p":%q}`, i, pad))})
				// It reads at once: the writer takes what it was handed.
				spinUntil(func() bool { return rated.isClosing() || rated.queuedCost() == 0 })
			}
			if !spinUntil(func() bool { return rated.isClosing() || h.Stats().Written >= n }) || rated.isClosing() {
				t.Fatalf("a rated client that reads at once: closing %v, %d written, %d conflations",
					rated.isClosing(), h.Stats().Written, h.Stats().Conflations)
			}
		})
	}
}

// What a pending message is charged against MaxQueueBytes covers what it
// keeps alive: its key and every frame of it, not only the client's own
// shape's frame.
func TestConflationChargesKeysAndFrames(t *testing.T) {
	const bound = 1 << 20
	h := New(Config{MaxQueueBytes: bound, Conflate: true, PingInterval: -1, WriteTimeout: time.Hour})
	c := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true}})
	key := strings.Repeat("K", 200)
	env := strings.Repeat("e", 300)
	for i := 0; i < 20_000; i += 100 {
		var b []*message.Message
		for j := i; j < i+100; j++ {
			m := msg(fmt.Sprintf("%s%d", key, j%15_000), `1`)
			m.Frames[message.ShapeEnvelope] = []byte(env)
			b = append(b, m)
		}
		h.Publish(b)
	}
	c.mu.Lock()
	live, closing := 0, c.closing
	if c.latest != nil {
		live = c.latest.live
	}
	c.mu.Unlock()
	if kept := live * (len(key) + len(env)); !closing && kept > bound {
		t.Fatalf("%d pending messages keep %d KiB of keys and frames alive against a %d KiB bound", live, kept>>10, bound>>10)
	}
}

// queuedCost is what the client's queue holds, not yet taken by the
// writer.
func (c *Client) queuedCost() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// Random topics (keys, records without a key, records of many rows,
// notices) through a client with a random rate, conflation and a slow
// link: records come in publish order, the cursor rule holds, every key
// ends at its latest value, each notice keeps its place among the
// records, and conflation ends. Some of the seeds conflate a rated
// client.
func TestLatestRandom(t *testing.T) {
	ratedConflated := 0
	for seed := range 200 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				if latestRandom(t, uint64(seed)) {
					ratedConflated++
				}
			})
		})
	}
	if ratedConflated == 0 {
		t.Fatal("no seed conflated a rated client")
	}
}

// latestRandom is one run of TestLatestRandom; it reports whether the
// client was rated and conflated.
func latestRandom(t *testing.T, seed uint64) bool {
	rng := rand.New(rand.NewPCG(seed, 7))
	rate := []float64{0, 0.5, 1, 10, 100, 1000}[rng.IntN(6)]
	h := New(Config{MaxQueueBytes: 2000 + rng.IntN(8000), Conflate: true, PingInterval: -1, WriteTimeout: time.Hour,
		ConflatedNotice: envNotice(`{"notice":"conflated"}`), CaughtUpNotice: envNotice(`{"notice":"caught_up"}`)})
	defer func() { _ = h.Shutdown(context.Background()) }()
	sc := &slowConn{bps: float64(200 + rng.IntN(10000))}
	c := h.AddClient(sc, ClientOptions{Sub: Subscription{All: true, MaxRate: rate, Shape: message.ShapeEnvelope}})
	keys := []string{"a", "b", "c", "d", "nil", "e", "f"}
	if rng.IntN(2) == 0 {
		for i := range 25 { // more keys than the pending set may hold
			keys = append(keys, fmt.Sprint("k", i))
		}
	}
	var published []string
	for i := 0; i < 600; {
		var batch []*message.Message
		n := 1 + rng.IntN(4)
		if rng.IntN(10) == 0 {
			n = 20 + rng.IntN(600) // a record of many rows
		}
		k := keys[rng.IntN(len(keys))]
		for range n {
			if rng.IntN(3) == 0 {
				k = keys[rng.IntN(len(keys))]
			}
			m := ratedMsg(k, i)
			if k == "nil" {
				m.Key = nil
			}
			batch = append(batch, m)
			published = append(published, k)
			i++
		}
		if rng.IntN(8) == 0 {
			// A notice after the records published so far.
			batch = append(batch, envNotice(fmt.Sprintf(`{"notice":"x","at":%d}`, i)))
		}
		h.Publish(batch)
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
	}
	time.Sleep(time.Hour)
	synctest.Wait()
	st := h.Stats()
	if c.isClosing() {
		t.Logf("closed (rate %v, bound %d): more keys than fit", rate, h.cfg.MaxQueueBytes)
		return false
	}
	var got []rated
	last := 0 // the position of the last notice received
	for _, d := range sc.deliveries() {
		var r struct {
			Env    *rated
			Notice string
			At     int
		}
		if err := json.Unmarshal([]byte(d.text), &r); err != nil {
			t.Fatalf("%q: %v", d.text, err)
		}
		switch {
		case r.Notice == "x":
			if len(got) > 0 && got[len(got)-1].I >= r.At {
				t.Fatalf("notice of position %d after record %d", r.At, got[len(got)-1].I)
			}
			last = r.At
		case r.Env != nil:
			if r.Env.I < last {
				t.Fatalf("record %d after the notice of position %d", r.Env.I, last)
			}
			got = append(got, *r.Env)
		}
	}
	checkLatest(t, published, got)
	t.Logf("rate %v: %d of %d delivered, conflations %d", rate, len(got), len(published), st.Conflations)
	if st.Conflating != 0 {
		t.Fatalf("still conflating at the end")
	}
	return rate > 0 && st.Conflations > 0
}

// With Conflate, a client whose raw socket takes everything is written
// as without it, a whole queue a write; its writes are bounded in bytes
// only once its socket was full.
func TestConflateBoundsOnlySlowWrites(t *testing.T) {
	h := New(Config{Conflate: true, WriteTimeout: time.Hour, PingInterval: -1, MaxQueueBytes: 4 << 20})
	runHub(t, h)
	srv, cli := tcpPair(t)
	_ = srv.SetWriteBuffer(1 << 20)
	_ = cli.SetReadBuffer(1 << 20)
	c := h.AddClient(srv, ClientOptions{Sub: Subscription{All: true}})
	pad := strings.Repeat("x", 1000)
	var msgs []*message.Message
	for i := range 100 { // 100 KB, more than slowBatchBytes
		msgs = append(msgs, ratedMsg(fmt.Sprintf("k%d", i), i))
		msgs[i].Frames[message.ShapePlain] = wsframe.Text([]byte(pad))
	}
	h.Publish(msgs)
	go func() { _, _ = io.Copy(io.Discard, cli) }()
	if !spinUntil(func() bool { return h.Stats().Written == 100 }) {
		t.Fatalf("%d written", h.Stats().Written)
	}
	st := h.Stats()
	if st.BlockedWrites > 0 {
		t.Fatalf("the socket was full: the test did not cover a client that reads at once; stats %+v", st)
	}
	if st.Writes != 1 {
		t.Fatalf("a client whose socket took everything: %d writes, want 1", st.Writes)
	}
	c.mu.Lock()
	c.slowWrites = true
	limit := c.batchBytes()
	c.mu.Unlock()
	if limit != slowBatchBytes {
		t.Fatalf("once its socket was full: writes of up to %d bytes, want %d", limit, slowBatchBytes)
	}
}

// The rows of a Quix record share its key and replace each other; records
// without a key count as one key: a rated client gets, a window later,
// the last row and the last keyless record only.
func TestRateRowsAndKeylessRecordsAreOneKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
		defer func() { _ = h.Shutdown(context.Background()) }()
		rc := &timedConn{}
		h.AddClient(rc, ClientOptions{Sub: Subscription{All: true, MaxRate: 1, Shape: message.ShapeEnvelope}})
		keyless := func(i int) *message.Message {
			m := ratedMsg("", i)
			m.Key = nil
			return m
		}
		h.Publish([]*message.Message{ratedMsg("a", 0), keyless(1)})
		var record []*message.Message // one record of 50 rows, then keyless records
		for i := range 50 {
			record = append(record, ratedMsg("a", 2+i))
		}
		h.Publish(record)
		h.Publish([]*message.Message{keyless(52), keyless(53)})
		time.Sleep(time.Second)
		synctest.Wait()
		got, _ := parseRatedEnv(t, rc.deliveries())
		want := []rated{{"a", 0}, {"", 1}, {"a", 51}, {"", 53}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

// parseRatedEnv parses envelope deliveries of ratedMsg records.
func parseRatedEnv(t *testing.T, ds []delivery) ([]rated, []time.Time) {
	t.Helper()
	var out []rated
	var at []time.Time
	for _, d := range ds {
		var r struct{ Env rated }
		if err := json.Unmarshal([]byte(d.text), &r); err != nil {
			t.Fatalf("%q: %v", d.text, err)
		}
		out = append(out, r.Env)
		at = append(at, d.at)
	}
	return out, at
}

// A rated client that does not read what its rate group hands it, and
// holds more than MaxQueueBytes of it, is conflated, with the notices,
// and its rate still applies: it gets each key at most once a window, in
// publish order, and ends at every key's latest value.
func TestRatedClientConflates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{MaxQueueBytes: 4 << 10, Conflate: true, WriteTimeout: time.Hour, PingInterval: -1,
			ConflatedNotice: envNotice(`{"notice":"conflated"}`), CaughtUpNotice: envNotice(`{"notice":"caught_up"}`)})
		defer func() { _ = h.Shutdown(context.Background()) }()
		c := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, MaxRate: 1, Shape: message.ShapeEnvelope}})
		var published []string
		var batch []*message.Message
		for i := range 200 { // 20 keys: one fetch, more than the bound, handed over at once
			k := fmt.Sprint("k", i%20)
			published = append(published, k)
			batch = append(batch, ratedMsg(k, i))
		}
		h.Publish(batch)
		// A window later the rest comes: it does not fit beside what
		// was not read.
		time.Sleep(time.Second)
		synctest.Wait()
		if c.isClosing() || h.Stats().Conflating != 1 {
			t.Fatalf("closing %v, conflating %d: want a conflated client", c.isClosing(), h.Stats().Conflating)
		}
		start := time.Now()
		rc := &timedConn{}
		c.Attach(rc)
		time.Sleep(time.Hour)
		synctest.Wait()
		ds := rc.deliveries()
		if len(ds) < 2 || ds[0].text != `{"notice":"conflated"}` {
			t.Fatalf("got %v, want the conflated notice first", ds)
		}
		var records []delivery
		caughtUp := false
		for _, d := range ds[1:] {
			if d.text == `{"notice":"caught_up"}` {
				caughtUp = true
				continue
			}
			records = append(records, d)
		}
		if !caughtUp || h.Stats().Conflating != 0 {
			t.Fatalf("caught up %v, %d conflating: want it caught up", caughtUp, h.Stats().Conflating)
		}
		got, at := parseRatedEnv(t, records)
		checkLatest(t, published, got)
		last := map[string]time.Time{}
		for i, r := range got {
			if l, ok := last[r.K]; ok && at[i].Sub(l) < time.Second {
				t.Fatalf("%v %v after the previous of its key, want at least a window (%v)", r, at[i].Sub(l), got)
			}
			last[r.K] = at[i]
		}
		if len(got) < 20 || at[0] != start {
			t.Fatalf("got %v from %v on, want every key's value at once", got, at[0].Sub(start))
		}
	})
}

// Recording that a key was handed over allocates nothing once the key is
// known; when it moves to a newer generation of the sent maps, only the
// new map is allocated, not the key again.
func TestRateSentAllocatesNothing(t *testing.T) {
	l := newLatest(1)
	m := ratedMsg("sensor-1", 0)
	now := int64(1)
	l.sent(m, now, 4<<20)
	within := testing.AllocsPerRun(100, func() {
		now += int64(time.Millisecond)
		l.sent(m, now, 4<<20)
	})
	rotating := testing.AllocsPerRun(100, func() {
		now += int64(time.Second) // a new generation at every call
		l.sent(m, now, 4<<20)
	})
	maps := testing.AllocsPerRun(100, func() {
		l.sentOld, l.sentNew = l.sentNew, make(map[string]*sentKey, len(l.sentNew))
	})
	// A new map allocates its table at its first entry: one more.
	if within != 0 || rotating > maps+1 {
		t.Fatalf("%.1f allocations per hand-over within a generation, want 0; %.1f at a new one, want the map's %.1f and its table",
			within, rotating, maps)
	}
}
