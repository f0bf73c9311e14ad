package hub

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// Members of exact-key, pattern, granted and notice-only rate groups (with
// and without views) join fresh or resumed, some on slow links (quiet
// hold), with and without conflation, while notices are published among
// the records. Each member must get, from its start, what its
// subscription takes in publish order, no duplicate, the cursor rule,
// every notice exactly once in its place, conflated/caught_up in pairs,
// and the conflating gauge must never go negative and end at zero.
func TestRateGroupsRandom(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { groupsRandom(t, seed) })
		})
	}
}

const oddKey = "a|b\x00c:1"

var groupSubs = []Subscription{
	{All: true},
	{Keys: []string{"k0", "k1", "k2"}},
	{Keys: []string{"k0"}},
	{Keys: []string{"k1", "k2*"}},
	{All: true, Grant: []string{"k0", "k1"}},
	{Keys: []string{"k5"}, Grant: []string{"k0"}}, // the grant leaves no keys
	{Keys: []string{oddKey, "k3"}},
	{Keys: []string{"k3", oddKey}}, // the same group, keys in another order
}

type groupMember struct {
	c      *Client
	conn   interface{ deliveries() []delivery }
	sub    Subscription
	start  int
	parked bool
	pushed int
}

func groupMsg(key string, i int, notice bool) *message.Message {
	p := fmt.Sprintf(`{"k":%q,"i":%d}`, key, i)
	m := &message.Message{Offset: int64(i)}
	if notice {
		m.Partition = -1
	} else {
		m.Key = []byte(key)
	}
	m.Frames[message.ShapePlain] = wsframe.Text([]byte(p))
	m.Frames[message.ShapeEnvelope] = wsframe.Text([]byte(p))
	return m
}

func groupsRandom(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	conflate := seed%2 == 1
	h := New(Config{PingInterval: -1, WriteTimeout: time.Hour, Conflate: conflate, MaxQueueBytes: 8 << 10,
		ConflatedNotice: envNotice(`{"notice":"conflated"}`), CaughtUpNotice: envNotice(`{"notice":"caught_up"}`)})
	view := &testView{keep: `"k"`}
	var keys []string // per index: the record's key, or "" for a notice
	var msgs []*message.Message
	var members []*groupMember
	compiled := map[int]*compiled{}
	takes := func(m *groupMember, i int) bool {
		if keys[i] == "" {
			return true
		}
		c := compile(m.sub)
		return c.matches([]byte(keys[i]))
	}
	_ = compiled
	add := func(park bool) {
		var conn interface {
			Conn
			deliveries() []delivery
		} = &timedConn{}
		if rng.IntN(2) == 0 {
			conn = &slowConn{bps: 100 + float64(rng.IntN(600))}
		}
		sub := groupSubs[rng.IntN(len(groupSubs))]
		sub.MaxRate = []float64{1, 2, 10}[rng.IntN(3)]
		sub.Shape = message.ShapeEnvelope
		if rng.IntN(3) == 0 {
			sub.View = view
		}
		m := &groupMember{conn: conn, sub: sub, start: len(keys), parked: park}
		if park {
			m.start = rng.IntN(len(keys) + 1)
			m.pushed = m.start
		}
		m.c = h.AddClient(conn, ClientOptions{Sub: sub, Park: park})
		members = append(members, m)
	}
	push := func(m *groupMember) {
		var out []*message.Message
		for i := m.pushed; i < len(msgs); i++ {
			if takes(m, i) {
				out = append(out, msgs[i])
			}
		}
		m.c.Push(out)
		m.pushed = len(msgs)
	}
	for range 300 {
		switch r := rng.IntN(12); {
		case r == 0:
			add(false)
		case r == 1:
			add(true)
		}
		for _, m := range members {
			if !m.parked {
				continue
			}
			push(m)
			if rng.IntN(3) == 0 {
				m.c.Join()
				m.parked = false
			}
		}
		var batch []*message.Message
		for range 1 + rng.IntN(4) {
			i := len(keys)
			var mm *message.Message
			if rng.IntN(15) == 0 {
				keys = append(keys, "")
				mm = groupMsg(fmt.Sprint("notice-", i), i, true)
			} else {
				k := []string{"k0", "k1", "k2", "k2x", "k3", "k4", oddKey}[rng.IntN(7)]
				keys = append(keys, k)
				mm = groupMsg(k, i, false)
			}
			msgs = append(msgs, mm)
			batch = append(batch, mm)
		}
		h.Wants()
		h.Publish(batch)
		if g := h.Stats().Conflating; g < 0 {
			t.Fatalf("conflating gauge %d", g)
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		if g := h.Stats().Conflating; g < 0 {
			t.Fatalf("conflating gauge %d", g)
		}
	}
	for _, m := range members {
		if m.parked {
			push(m)
			m.c.Join()
			m.parked = false
		}
	}
	time.Sleep(10 * time.Minute)
	synctest.Wait()
	if g := h.Stats().Conflating; g != 0 {
		t.Errorf("conflating gauge %d at the end, every member idle", g)
	}
	for j, m := range members {
		if m.c.isClosing() {
			t.Logf("member %d closed: %s", j, m.c.reason)
			continue
		}
		// The member's own published list, indexed from 0.
		var own []string
		local := map[int]int{}
		for i := m.start; i < len(keys); i++ {
			if takes(m, i) {
				local[i] = len(own)
				k := keys[i]
				if k == "" {
					k = fmt.Sprint("notice-", i) // unique: never superseded
				}
				own = append(own, k)
			}
		}
		var got []rated
		state := "" // conflated notices
		for _, d := range m.conn.deliveries() {
			switch d.text {
			case `{"notice":"conflated"}`:
				if state == "conflated" {
					t.Fatalf("member %d: conflated twice", j)
				}
				state = "conflated"
				continue
			case `{"notice":"caught_up"}`:
				if state != "conflated" {
					t.Fatalf("member %d: caught_up without conflated", j)
				}
				state = ""
				continue
			}
			var r rated
			if _, err := fmt.Sscanf(d.text, `{"k":%q,"i":%d}`, &r.K, &r.I); err != nil {
				t.Fatalf("member %d: %q: %v", j, d.text, err)
			}
			li, ok := local[r.I]
			if !ok {
				t.Fatalf("member %d (sub %+v, start %d): got index %d (%q) it does not take", j, m.sub, m.start, r.I, r.K)
			}
			got = append(got, rated{r.K, li})
		}
		if state != "" {
			t.Fatalf("member %d: conflated at the end, never caught_up", j)
		}
		seen := map[int]bool{}
		for _, r := range got {
			if seen[r.I] {
				t.Fatalf("member %d: index %d twice", j, r.I)
			}
			seen[r.I] = true
		}
		func() {
			defer func() {
				if t.Failed() {
					t.Logf("member %d: sub %+v start %d", j, m.sub, m.start)
				}
			}()
			checkLatest(t, own, got)
		}()
	}
	if t.Failed() {
		return
	}
	st := h.Stats()
	closed := 0
	for _, m := range members {
		if m.c.isClosing() {
			closed++
		}
	}
	t.Logf("members %d closed %d conflations %d superseded %d", len(members), closed, st.Conflations, st.Superseded)
	for _, m := range members {
		m.c.Abort(ReasonClientClosed)
	}
	synctest.Wait()
	h.rates.mu.Lock()
	n := len(h.rates.groups) + len(h.rates.keyed) + len(h.rates.scan) + len(h.rates.viewed) + len(h.rates.exact)
	h.rates.mu.Unlock()
	if n != 0 {
		t.Fatalf("rate index not empty after every member left: %d", n)
	}
	_ = strings.Repeat
}
