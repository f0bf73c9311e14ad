package hub

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	"github.com/wsdest/wsdest/internal/message"
)

// A client added to its rate group while a Publish is offered to the
// group (AddClient has read its Wants snapshot number, and the group has
// handed on part of the Publish) gets that Publish whole or not at all:
// the group's held messages of it would otherwise come without those it
// handed on at once, a cursor past a record never sent. The interleaving
// is forced by taking the client out of its group and adding it back.
func TestRateMemberGetsWholePublishOrNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
		h.AddClient(&timedConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: 1}})
		h.Publish([]*message.Message{ratedMsg("k", 0)}) // k's window starts
		conn := &timedConn{}
		c := h.AddClient(conn, ClientOptions{Sub: Subscription{All: true, MaxRate: 1}})
		g := c.sub.rate()
		g.remove(c) // AddClient has read c.from, not yet added c
		h.Wants()
		h.Publish([]*message.Message{ratedMsg("j", 1), ratedMsg("k", 2)}) // j at once, k held
		g.add(c)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got, _ := parseRated(t, conn.deliveries())
		if s := fmt.Sprint(got); s != "[]" && s != "[{j 1} {k 2}]" {
			t.Fatalf("the client got %s of a Publish of j 1 and k 2: k's cursor says j was delivered", s)
		}
	})
}

// Once its last client is gone, a rate group, with the keys it remembers
// as sent (up to about MaxQueueBytes), is no longer reachable from the
// hub, while the topic goes on.
func TestRateReleasedGroupNotPinned(t *testing.T) {
	h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
	c := h.AddClient(nullConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: 0.1}})
	var batch []*message.Message
	for i := range 10_000 {
		batch = append(batch, msg(fmt.Sprintf("key-%06d", i), `1`))
	}
	h.Publish(batch)
	g := c.sub.rate()
	g.mu.Lock()
	remembered := len(g.l.sentNew) + len(g.l.sentOld)
	g.mu.Unlock()
	wp := weak.Make(g)
	g = nil
	c.Abort(ReasonClientClosed)
	if !spinUntil(func() bool { return h.Stats().Clients == 0 }) {
		t.Fatal("client not removed")
	}
	c = nil
	for range 3 {
		h.Publish([]*message.Message{msg("x", `1`)})
	}
	runtime.GC()
	runtime.GC()
	if g := wp.Value(); g != nil {
		g.mu.Lock()
		n := len(g.l.sentNew) + len(g.l.sentOld)
		g.mu.Unlock()
		t.Fatalf("the released group is still reachable, remembering %d of the %d keys it sent", n, remembered)
	}
}

// A rated client whose link (2 KB/s) is slower than what its rate hands
// on (200 keys a second) but that keeps reading is kept: while its writer
// is busy, what its group hands it waits in a set of its own, one message
// per key, and is not closed 1008 "too slow".
func TestRatedSlowLinkKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{MaxQueueBytes: 64 << 10, PingInterval: -1, WriteTimeout: time.Hour})
		sc := &slowConn{bps: 2000}
		c := h.AddClient(sc, ClientOptions{Sub: Subscription{All: true, MaxRate: 1}})
		const keys = 200
		var published []string
		for i := range 20_000 { // 60 s, every key every 0.6 s
			k := fmt.Sprint("k", i%keys)
			published = append(published, k)
			h.Publish([]*message.Message{ratedMsg(k, i)})
			time.Sleep(3 * time.Millisecond)
		}
		synctest.Wait()
		if c.isClosing() {
			t.Fatalf("a rated client that keeps reading at 2 KB/s was closed (%s) after %d messages", c.reason, len(sc.deliveries()))
		}
		time.Sleep(10 * time.Minute) // it reads what waits
		synctest.Wait()
		got, _ := parseRated(t, sc.deliveries())
		checkLatest(t, published, got)
		if h.Stats().Conflations != 0 {
			t.Fatal("a client holding one message per key was counted as conflated")
		}
		c.Abort(ReasonClientClosed)
		synctest.Wait()
	})
}

// stallConn blocks every write until closed.
type stallConn struct {
	timedConn
	done chan struct{}
}

func (s *stallConn) Write([]byte) (int, error) { <-s.done; return 0, fmt.Errorf("closed") }
func (s *stallConn) Close() error {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	return nil
}

// A member whose socket takes nothing holds up neither the other member
// of its group nor the publisher: the other gets every key at its rate to
// the end, and the stalled one holds at most one message per key.
func TestRateStalledMemberHoldsUpNoOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour, MaxQueueBytes: 16 << 10})
		stalled := h.AddClient(&stallConn{done: make(chan struct{})}, ClientOptions{Sub: Subscription{All: true, MaxRate: 10}})
		fast := &timedConn{}
		h.AddClient(fast, ClientOptions{Sub: Subscription{All: true, MaxRate: 10}})
		var published []string
		for i := range 5000 {
			k := fmt.Sprint("k", i%20)
			published = append(published, k)
			h.Publish([]*message.Message{ratedMsg(k, i)})
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got, _ := parseRated(t, fast.deliveries())
		checkLatest(t, published, got)
		stalled.mu.Lock()
		held := 0
		if stalled.latest != nil {
			held = stalled.latest.live
		}
		queued, closing := len(stalled.queue), stalled.closing
		stalled.mu.Unlock()
		if closing || held > 20 || queued > 20 {
			t.Errorf("the stalled member: closing %v, %d held and %d queued, want at most one per key", closing, held, queued)
		}
		stalled.Abort(ReasonClientClosed)
		synctest.Wait()
	})
}

// A rated client is a member of its rate group before it can be found in
// its shard (by Shutdown or the pinger, which may tear it down), and not
// under the shard's lock: while its group's lock is held (a hand-over),
// AddClient waits with the client nowhere to be found, and other clients
// are still added. Removing a client that is not a member removes no
// other.
func TestRatedClientInGroupBeforeShard(t *testing.T) {
	h := New(Config{Shards: 1, PingInterval: -1, WriteTimeout: time.Hour})
	member := h.AddClient(&timedConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: 1000}})
	g := member.sub.rate()
	g.mu.Lock() // a hand-over in progress
	added := make(chan *Client)
	go func() {
		added <- h.AddClient(&timedConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: 1000}})
	}()
	other := h.AddClient(&timedConn{}, ClientOptions{Sub: Subscription{All: true}}) // the shard is free
	if n := len(h.clients()); n != 2 {
		g.mu.Unlock()
		t.Fatalf("%d clients found while the rated one waits for its group, want the 2 others", n)
	}
	g.mu.Unlock()
	late := <-added
	stray := &Client{hub: h} // never a member: pos 0
	g.remove(stray)
	g.mu.Lock()
	members := append([]*Client(nil), g.members...)
	g.mu.Unlock()
	if len(members) != 2 || members[0] != member || members[1] != late || other.sub.rate() != nil {
		t.Fatalf("members %v, want the first client and the one added while the group was busy", members)
	}
}
