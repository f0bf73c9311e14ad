package hub

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest/internal/message"
)

// Members join a rate group at random points, fresh or
// resumed (Park, Push of everything from their start, Join between two
// Publishes), some with a view, some leave; each must get, from its start
// on, messages in publish order, no duplicate, the cursor rule, and every
// key's last value.
func TestRateGroupMembersRandom(t *testing.T) {
	for seed := range uint64(24) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { rateMembersRandom(t, seed) })
		})
	}
}

type randomMember struct {
	c      *Client
	conn   interface{ deliveries() []delivery }
	start  int
	parked bool
	pushed int // published[start:pushed] pushed so far
	left   bool
}

func rateMembersRandom(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	h := New(Config{PingInterval: -1, WriteTimeout: time.Hour, Conflate: seed%2 == 1, MaxQueueBytes: 16 << 10})
	view := &testView{keep: `"k"`}
	var published []string
	var msgs []*message.Message
	var members []*randomMember
	add := func(park, viewed bool) {
		var conn interface {
			Conn
			deliveries() []delivery
		} = &timedConn{}
		if rng.IntN(2) == 0 {
			conn = &slowConn{bps: 200 + float64(rng.IntN(400))}
		}
		sub := Subscription{All: true, MaxRate: 2}
		if viewed {
			sub.View = view
		}
		m := &randomMember{conn: conn, start: len(published), parked: park}
		if park {
			m.start = rng.IntN(len(published) + 1) // resumes from anywhere in the past
			m.pushed = m.start
		}
		m.c = h.AddClient(conn, ClientOptions{Sub: sub, Park: park})
		members = append(members, m)
	}
	const n = 400
	for range n {
		switch r := rng.IntN(20); {
		case r == 0:
			add(false, rng.IntN(2) == 0)
		case r == 1:
			add(true, rng.IntN(2) == 0)
		}
		// Parked members catch up, and some join, between two Publishes.
		for _, m := range members {
			if !m.parked || m.left {
				continue
			}
			m.c.Push(msgs[m.pushed:])
			m.pushed = len(msgs)
			if rng.IntN(3) == 0 {
				m.c.Join()
				m.parked = false
			}
		}
		var batch []*message.Message
		for range 1 + rng.IntN(3) { // up to three records in one Publish
			k := fmt.Sprint("k", rng.IntN(6))
			mm := ratedMsg(k, len(published))
			published = append(published, k)
			msgs = append(msgs, mm)
			batch = append(batch, mm)
		}
		h.Publish(batch)
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
	}
	for _, m := range members {
		if m.parked {
			m.c.Push(msgs[m.pushed:])
			m.c.Join()
			m.parked = false
		}
	}
	time.Sleep(time.Minute)
	synctest.Wait()
	for j, m := range members {
		var recs []delivery
		for _, d := range m.conn.deliveries() {
			if d.text[0] == '{' && d.text[2] == 'k' {
				recs = append(recs, d)
			}
		}
		if m.c.isClosing() {
			t.Logf("member %d closed: %s", j, m.c.reason)
			continue
		}
		got, _ := parseRated(t, recs)
		seen := map[int]bool{}
		for _, r := range got {
			if seen[r.I] {
				t.Fatalf("member %d (start %d): index %d twice", j, m.start, r.I)
			}
			seen[r.I] = true
			if r.I < m.start {
				t.Fatalf("member %d (start %d): got index %d from before its start", j, m.start, r.I)
			}
		}
		// Indices from start on; checkLatest counts from 0.
		var shifted []rated
		for _, r := range got {
			shifted = append(shifted, rated{r.K, r.I - m.start})
		}
		t.Logf("member %d: start %d, %d received", j, m.start, len(got))
		checkLatest(t, published[m.start:], shifted)
	}
	for _, m := range members {
		m.c.Abort(ReasonClientClosed)
	}
	synctest.Wait()
}
