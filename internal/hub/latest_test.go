package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// timedConn is a connection that takes every write at once and records
// the text frames written, with the time of their write.
type timedConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	got      []delivery
}

type delivery struct {
	at   time.Time
	text string
}

func (r *timedConn) Write(b []byte) (int, error) {
	now := time.Now()
	rd := bytes.NewReader(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	for rd.Len() > 0 {
		f, err := readFrame(rd)
		if err != nil {
			return 0, err
		}
		if f.op == wsframe.OpText {
			r.got = append(r.got, delivery{now, string(f.payload)})
		}
	}
	return len(b), nil
}
func (r *timedConn) SetWriteDeadline(time.Time) error { return nil }
func (r *timedConn) Close() error                     { return nil }

func (r *timedConn) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// rated is one test record: its key and its publish index.
type rated struct {
	K string `json:"k"`
	I int    `json:"i"`
}

func ratedMsg(key string, i int) *message.Message {
	return msg(key, fmt.Sprintf(`{"k":%q,"i":%d}`, key, i))
}

// checkLatest checks what a latest-wins client received (records, in the
// order received; notices left out) against what was published (the
// keys, by publish index): messages in publish order, and the cursor
// rule: at every message received, the latest message of every key
// published up to that message's own position has been received or is
// superseded (a later message of its key was published), so that
// resuming from its cursor loses nothing but superseded messages; and at
// the end every key's last value has been received.
func checkLatest(t *testing.T, published []string, got []rated) {
	t.Helper()
	superseded := make([]bool, len(published))
	seen := map[string]int{}
	for i, k := range published {
		if j, ok := seen[k]; ok {
			superseded[j] = true
		}
		seen[k] = i
	}
	lastPub := map[string]int{}
	lastGot := map[string]int{}
	next := 0
	for n, r := range got {
		if r.I < next {
			t.Fatalf("message %d (index %d) out of publish order", n, r.I)
		}
		for ; next <= r.I; next++ {
			lastPub[published[next]] = next
		}
		lastGot[r.K] = r.I
		for k, i := range lastPub {
			if got, ok := lastGot[k]; (!ok || got != i) && !superseded[i] {
				t.Fatalf("at message %d (index %d): key %s's latest is index %d, received %d: resuming from here would lose it",
					n, r.I, k, i, lastGot[k])
			}
		}
	}
	for i, k := range published {
		lastPub[k] = i
	}
	for k, i := range lastPub {
		if got, ok := lastGot[k]; !ok || got != i {
			t.Fatalf("key %s ended at index %d, want its last value, index %d", k, lastGot[k], i)
		}
	}
}

func parseRated(t *testing.T, ds []delivery) ([]rated, []time.Time) {
	t.Helper()
	var out []rated
	var at []time.Time
	for _, d := range ds {
		var r rated
		if err := json.Unmarshal([]byte(d.text), &r); err != nil {
			t.Fatalf("%q: %v", d.text, err)
		}
		out = append(out, r)
		at = append(at, d.at)
	}
	return out, at
}

// With max_rate=N, each key is sent at most N times a second, in publish
// order, the cursor rule holds and every key ends at its latest value.
func TestRateBoundPerKey(t *testing.T) {
	for _, rate := range []float64{10, 1, 0.5} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
				rc := &timedConn{}
				h.AddClient(rc, ClientOptions{Sub: Subscription{All: true, MaxRate: rate}})
				keys := []string{"a", "b", "c", "d", "e"}
				rng := rand.New(rand.NewPCG(1, uint64(rate*10)))
				var published []string
				for i := range 3000 {
					k := keys[rng.IntN(len(keys))]
					if i > 2000 {
						k = keys[rng.IntN(2)] // the other keys go quiet
					}
					published = append(published, k)
					h.Publish([]*message.Message{ratedMsg(k, i)})
					if rng.IntN(4) == 0 {
						time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
					}
				}
				time.Sleep(time.Duration(2 * float64(time.Second) / rate))
				synctest.Wait()
				got, at := parseRated(t, rc.deliveries())
				checkLatest(t, published, got)
				interval := time.Duration(float64(time.Second) / rate)
				last := map[string]time.Time{}
				for n, r := range got {
					if l, ok := last[r.K]; ok && at[n].Sub(l) < interval {
						t.Fatalf("key %s sent %v after its previous message, want at least %v", r.K, at[n].Sub(l), interval)
					}
					last[r.K] = at[n]
				}
				st := h.Stats()
				if st.Superseded == 0 || st.Superseded+uint64(len(got)) != 3000 {
					t.Fatalf("superseded %d + delivered %d, want 3000 with some superseded", st.Superseded, len(got))
				}
			})
		})
	}
}

// A message of a key not sent within the window goes at once; a notice
// waits behind the pending messages published before it, keeping its
// place in publish order.
func TestRateSendsAtOnceAndNoticesKeepTheirPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
		rc := &timedConn{}
		h.AddClient(rc, ClientOptions{Sub: Subscription{All: true, MaxRate: 1, Shape: message.ShapeEnvelope}})
		notice := &message.Message{Partition: -1}
		notice.Frames[message.ShapeEnvelope] = wsframe.Text([]byte(`{"notice":"x"}`))
		start := time.Now()
		h.Publish([]*message.Message{ratedMsg("a", 0), ratedMsg("a", 1), notice, ratedMsg("b", 3)})
		synctest.Wait()
		var texts []string
		for _, d := range rc.deliveries() {
			if d.at != start {
				t.Fatalf("%s sent at %v, want at once", d.text, d.at.Sub(start))
			}
			texts = append(texts, d.text)
		}
		// The notice and b wait behind a's pending message: publish order.
		want := []string{`{"env":{"k":"a","i":0}}`}
		if fmt.Sprint(texts) != fmt.Sprint(want) {
			t.Fatalf("at once: %q, want %q", texts, want)
		}
		notice2 := &message.Message{Partition: -1}
		notice2.Frames[message.ShapeEnvelope] = wsframe.Text([]byte(`{"notice":"y"}`))
		h.Publish([]*message.Message{notice2}) // behind them too
		time.Sleep(time.Second)
		synctest.Wait()
		ds := rc.deliveries()[1:]
		want = []string{`{"env":{"k":"a","i":1}}`, `{"notice":"x"}`, `{"env":{"k":"b","i":3}}`, `{"notice":"y"}`}
		if len(ds) != len(want) || ds[0].at.Sub(start) != time.Second {
			t.Fatalf("after a second: %v, want %q", ds, want)
		}
		for i, d := range ds {
			if d.text != want[i] {
				t.Fatalf("after a second: %v, want %q", ds, want)
			}
		}
	})
}

// A rated client's catch-up (Push) is not rated, and what its rate group
// holds from before Join is not handed to it: the catch-up brought it.
// From Join on it gets what the group hands on of later Publishes, at
// the group's rate.
func TestRateAfterCatchUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
		live := &timedConn{}
		h.AddClient(live, ClientOptions{Sub: Subscription{All: true, MaxRate: 1}})
		h.Publish([]*message.Message{ratedMsg("a", 0)})
		h.Publish([]*message.Message{ratedMsg("a", 1)}) // held by the group
		rc := &timedConn{}
		c := h.AddClient(rc, ClientOptions{Sub: Subscription{All: true, MaxRate: 1}, Park: true})
		h.Publish([]*message.Message{ratedMsg("a", 2)}) // held, superseding 1; c is parked
		var past []*message.Message
		for i := range 3 {
			past = append(past, ratedMsg("a", i))
		}
		c.Push(past)
		c.Join()
		synctest.Wait()
		if n := len(rc.deliveries()); n != 3 {
			t.Fatalf("%d delivered at once, want the 3 of the catch-up", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got, _ := parseRated(t, rc.deliveries()); len(got) != 3 {
			t.Fatalf("got %v: the group handed on a message of before Join", got)
		}
		time.Sleep(time.Second)                         // the group handed 2 on a second ago
		h.Publish([]*message.Message{ratedMsg("a", 3)}) // a's window passed: at once
		h.Publish([]*message.Message{ratedMsg("a", 4)}) // a second later
		synctest.Wait()
		got, _ := parseRated(t, rc.deliveries())
		if len(got) != 4 || got[3].I != 3 {
			t.Fatalf("got %v, want the first live message at once", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got, _ = parseRated(t, rc.deliveries())
		if len(got) != 5 || got[4].I != 4 {
			t.Fatalf("got %v, want the next a second later", got)
		}
		if ds := live.deliveries(); len(ds) != 4 {
			t.Fatalf("the live client got %d messages, want 0, 2, 3 and 4", len(ds))
		}
	})
}

// readAll reads p's text frames until one is until.
func readAll(t *testing.T, p *peer, until string) []string {
	t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(testWait))
	var out []string
	for {
		f, err := readFrame(p.conn)
		if err != nil {
			t.Fatalf("after %d frames: %v", len(out), err)
		}
		if f.op == wsframe.OpClose {
			t.Fatalf("closed after %d frames: %q", len(out), f.payload)
		}
		if f.op != wsframe.OpText {
			continue
		}
		out = append(out, string(f.payload))
		if string(f.payload) == until {
			return out
		}
	}
}

// envNotice is a notice for envelope clients, as the service builds them.
func envNotice(json string) *message.Message {
	n := &message.Message{Partition: -1}
	n.Frames[message.ShapeEnvelope] = wsframe.Text([]byte(json))
	return n
}

// pendingCost is what a client holds: its queue and its pending set.
func (c *Client) pendingCost() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.queued
	if c.latest != nil {
		n += c.latest.cost
	}
	return n
}

// With Conflate, a client that stops reading is kept: it gets the
// conflated notice, then each key's latest message in publish order,
// then caught_up; what it holds stays within MaxQueueBytes; a client that
// keeps up gets every message meanwhile.
func TestConflation(t *testing.T) {
	const bound = 4 << 10
	h := New(Config{MaxQueueBytes: bound, Conflate: true, WriteTimeout: time.Hour, PingInterval: -1,
		ConflatedNotice: envNotice(`{"notice":"conflated"}`), CaughtUpNotice: envNotice(`{"notice":"caught_up"}`)})
	slow := addPeer(t, h, Subscription{All: true, Shape: message.ShapeEnvelope})
	fast := addPeer(t, h, Subscription{All: true})
	var published []string
	for i := range 3000 {
		k := fmt.Sprintf("k%d", i%7)
		published = append(published, k)
		h.Publish([]*message.Message{ratedMsg(k, i)})
		if got := fast.texts(t, 1)[0]; got != fmt.Sprintf(`{"k":%q,"i":%d}`, k, i) {
			t.Fatalf("fast client got %s at %d", got, i)
		}
		// Before conflation, the bound is checked at each Publish
		// against what was held before the previous one: one message
		// more may be held.
		if n := slow.client.pendingCost(); n > bound+128 {
			t.Fatalf("slow client holds %d bytes, over %d", n, bound)
		}
	}
	if st := h.Stats(); st.Conflating != 1 || st.Conflations != 1 || st.Superseded == 0 {
		t.Fatalf("stats %+v, want one client conflating, messages superseded", st)
	}
	texts := readAll(t, slow, `{"notice":"caught_up"}`)
	var got []rated
	conflated := false
	for _, s := range texts[:len(texts)-1] {
		if s == `{"notice":"conflated"}` {
			conflated = true
			continue
		}
		var r struct{ Env rated }
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		got = append(got, r.Env)
	}
	if !conflated {
		t.Fatal("no conflated notice")
	}
	checkLatest(t, published, got)
	// Caught up: every message again, no notice.
	h.Publish([]*message.Message{ratedMsg("k0", 3000), ratedMsg("k0", 3001)})
	if got := slow.texts(t, 2); got[0] != `{"env":{"k":"k0","i":3000}}` || got[1] != `{"env":{"k":"k0","i":3001}}` {
		t.Fatalf("after catching up: %q", got)
	}
	if st := h.Stats(); st.Conflating != 0 || st.Clients != 2 {
		t.Fatalf("stats %+v, want no client conflating, both connected", st)
	}
}

// A conflating client of more distinct keys than MaxQueueBytes holds is
// closed with 1008 "too slow", as without conflation.
func TestConflationBoundedByKeys(t *testing.T) {
	h := New(Config{MaxQueueBytes: 4 << 10, Conflate: true, WriteTimeout: time.Hour, PingInterval: -1})
	slow := addPeer(t, h, Subscription{All: true})
	for i := range 1000 {
		h.Publish([]*message.Message{ratedMsg(fmt.Sprintf("k%d", i), i)})
		if n := slow.client.pendingCost(); n > 4<<10+128 {
			t.Fatalf("holds %d bytes", n)
		}
	}
	if !slow.client.isClosing() {
		t.Fatal("not closing")
	}
	if st := h.Stats(); st.Conflating != 0 || st.Conflations != 1 {
		t.Fatalf("stats %+v, want one conflation, ended", st)
	}
	_ = slow.conn.SetReadDeadline(time.Now().Add(testWait))
	for {
		f, err := readFrame(slow.conn)
		if err != nil {
			t.Fatal(err)
		}
		if f.op == wsframe.OpClose {
			if !strings.HasSuffix(string(f.payload), "too slow") {
				t.Fatalf("close %q", f.payload)
			}
			break
		}
	}
	slow.conn.Close()
	slow.client.Abort(ReasonClientClosed)
	<-slow.closed
	if got := h.Stats().Closes[ReasonQueueFull]; got != 1 {
		t.Fatalf("queue_full closes = %d, want 1", got)
	}
}

// With Conflate, a write carries about slowBatchBytes at most, so that a
// slow reader finishes each within WriteTimeout; without it, a queue of
// fewer than maxBatch frames goes out in one write.
func TestConflateBoundsWrites(t *testing.T) {
	for _, conflate := range []bool{false, true} {
		h := New(Config{Conflate: conflate, WriteTimeout: time.Hour, PingInterval: -1})
		c := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true}})
		pad := strings.Repeat("x", 1000)
		var msgs []*message.Message
		for i := range 200 {
			msgs = append(msgs, ratedMsg(fmt.Sprintf("k%d", i%5), i))
			msgs[i].Frames[message.ShapePlain] = wsframe.Text([]byte(pad))
		}
		h.Publish(msgs)
		rc := newRecConn()
		c.Attach(rc)
		if !spinUntil(func() bool { return h.Stats().Written == 200 }) {
			t.Fatalf("conflate=%v: %d written", conflate, h.Stats().Written)
		}
		largest := 0
		rc.mu.Lock()
		for _, w := range rc.writes {
			largest = max(largest, len(w))
		}
		rc.mu.Unlock()
		if conflate && largest > slowBatchBytes+1100 || !conflate && largest < 200*1000 {
			t.Fatalf("conflate=%v: largest write %d bytes", conflate, largest)
		}
	}
}

// An idle client's struct stays within the 320-byte allocation size class
// that design.md's memory per idle connection counts: what a rate or
// conflation needs lives behind one pointer, allocated only for such
// clients.
func TestClientSize(t *testing.T) {
	if n := unsafe.Sizeof(Client{}); n > 320 {
		t.Fatalf("Client is %d bytes, over the 320-byte size class", n)
	}
}

// Rated clients of one subscription and rate share one rate group, which
// waits for a key's window with a runtime timer, not a goroutine: 1,000
// clients with a message held cost one group, one pending message and no
// goroutine, and once they are gone the group is forgotten and its timer
// stopped. Another rate, subscription or view is another group.
func TestRateWaitsWithoutGoroutines(t *testing.T) {
	h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
	base := runtime.NumGoroutine()
	clients := make([]*Client, 1000)
	for i := range clients {
		clients[i] = h.AddClient(&timedConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: 0.1}})
	}
	h.AddClient(&timedConn{}, ClientOptions{Sub: Subscription{Keys: []string{"a"}, MaxRate: 0.1}})
	h.AddClient(&timedConn{}, ClientOptions{Sub: Subscription{Keys: []string{"*"}, MaxRate: 0.1}}) // every key: the first group
	h.AddClient(&timedConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: 0.2}})
	h.Publish([]*message.Message{ratedMsg("a", 0)})
	h.Publish([]*message.Message{ratedMsg("a", 1)}) // held for 10 s (5 s at 0.2)
	if !spinUntil(func() bool { return h.Stats().Written == 1003 && runtime.NumGoroutine() <= base+20 }) {
		t.Fatalf("%d written, %d goroutines (%d before)", h.Stats().Written, runtime.NumGoroutine(), base)
	}
	groups := h.allRateGroups()
	if len(groups) != 3 {
		t.Fatalf("%d rate groups, want 3", len(groups))
	}
	g := clients[0].sub.rate()
	g.mu.Lock()
	members, held := len(g.members), g.l.live
	g.mu.Unlock()
	if members != 1001 || held != 1 {
		t.Fatalf("the group has %d members and holds %d messages, want 1,001 and 1", members, held)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = h.Shutdown(ctx)
	if n := len(h.allRateGroups()); n != 0 {
		t.Fatalf("%d rate groups after Shutdown", n)
	}
	for _, g := range groups {
		g.mu.Lock()
		armed := g.timer != nil && g.timer.Stop() // false: the last member's teardown stopped it
		g.mu.Unlock()
		if armed {
			t.Fatalf("group %q's timer still armed after Shutdown", g.key.sub)
		}
	}
}
