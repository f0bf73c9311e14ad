package hub

import (
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/message"
)

// A rate group's mu is held while a hand-over is queued for every member
// (O(members × messages)); AddClient and teardown take it (g.add,
// g.remove), never under their shard's lock: a long hand-over of one
// group (stood in for here by holding g.mu), with a member joining,
// holds up neither Publish's delivery to other clients nor the shard.
func TestRateGroupLockHoldsUpNoShard(t *testing.T) {
	h := New(Config{Shards: 1, PingInterval: -1, WriteTimeout: time.Hour})
	plain := &timedConn{}
	h.AddClient(plain, ClientOptions{Sub: Subscription{All: true}})
	member := h.AddClient(&timedConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: 1}})
	g := member.sub.rate()
	g.mu.Lock() // a hand-over to many members in progress
	joined := make(chan struct{})
	go func() {
		h.AddClient(&timedConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: 1}})
		close(joined)
	}()
	published := make(chan struct{})
	go func() { h.Publish([]*message.Message{msg("k", `1`)}); close(published) }()
	delivered := spinUntil(func() bool { return len(plain.deliveries()) == 1 })
	g.mu.Unlock()
	<-joined
	<-published
	if !delivered {
		t.Fatal("Publish to an unrated client waited for a rate group's hand-over")
	}
}
