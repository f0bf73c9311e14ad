package hub

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest/internal/message"
)

// Clients share a rate group exactly when they take the same keys under
// the same grant (in any order), with the same view and rate.
func TestRateGroups(t *testing.T) {
	v1, v2 := &testView{keep: "x"}, &testView{keep: "y"}
	base := Subscription{Keys: []string{"a", "b*"}, MaxRate: 1}
	tests := []struct {
		name string
		sub  Subscription
		same bool
	}{
		{"same", base, true},
		{"keys in another order", Subscription{Keys: []string{"b*", "a", "a"}, MaxRate: 1}, true},
		{"another key", Subscription{Keys: []string{"a", "c*"}, MaxRate: 1}, false},
		{"a key more", Subscription{Keys: []string{"a", "b*", "c"}, MaxRate: 1}, false},
		{"a pattern for a key", Subscription{Keys: []string{"a*", "b*"}, MaxRate: 1}, false},
		{"every key", Subscription{All: true, MaxRate: 1}, false},
		{"another rate", Subscription{Keys: []string{"a", "b*"}, MaxRate: 2}, false},
		{"a grant", Subscription{Keys: []string{"a", "b*"}, Grant: []string{"b1"}, MaxRate: 1}, false},
		{"a grant of everything", Subscription{Keys: []string{"a", "b*"}, Grant: []string{"*"}, MaxRate: 1}, true},
		{"a view", Subscription{Keys: []string{"a", "b*"}, View: v1, MaxRate: 1}, false},
	}
	h := New(Config{PingInterval: -1})
	first := h.AddClient(nil, ClientOptions{Sub: base})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.AddClient(nil, ClientOptions{Sub: tt.sub})
			if same := c.sub.rate() == first.sub.rate(); same != tt.same {
				t.Fatalf("same group: %v, want %v", same, tt.same)
			}
		})
	}
	a := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v1, MaxRate: 1}})
	b := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v1, MaxRate: 1}})
	c := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v2, MaxRate: 1}})
	if a.sub.rate() != b.sub.rate() || a.sub.rate() == c.sub.rate() || a.View() != v1 || c.View() != v2 {
		t.Fatal("clients of one view and rate do not share a group, or clients of two views do")
	}
}

// A client takes what its rate group hands on of the Publishes after it
// was added: not a message the group held from before, which was
// published before the client existed.
func TestRateGroupNewMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
		old := &timedConn{}
		h.AddClient(old, ClientOptions{Sub: Subscription{All: true, MaxRate: 1}})
		h.Publish([]*message.Message{ratedMsg("a", 0)})
		h.Publish([]*message.Message{ratedMsg("a", 1), ratedMsg("b", 2)}) // a held, b held behind it
		joined := &timedConn{}
		h.AddClient(joined, ClientOptions{Sub: Subscription{All: true, MaxRate: 1}})
		h.Wants()                                       // as the service does before each Publish: the next is the client's first
		h.Publish([]*message.Message{ratedMsg("b", 3)}) // supersedes b's 2
		time.Sleep(time.Second)
		synctest.Wait()
		got, _ := parseRated(t, old.deliveries())
		if fmt.Sprint(got) != "[{a 0} {a 1} {b 3}]" {
			t.Fatalf("the first client got %v", got)
		}
		got, _ = parseRated(t, joined.deliveries())
		if fmt.Sprint(got) != "[{b 3}]" {
			t.Fatalf("the client added later got %v, want only b's 3", got)
		}
	})
}

// allRateGroups returns the hub's rate groups.
func (h *Hub) allRateGroups() []*rateGroup {
	h.rates.mu.RLock()
	defer h.rates.mu.RUnlock()
	var out []*rateGroup
	for _, g := range h.rates.groups {
		out = append(out, g)
	}
	return out
}
