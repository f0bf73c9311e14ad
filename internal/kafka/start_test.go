package kafka

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNothingMissedAfterReady holds each of the ListOffsets requests that
// find where "the end of the topic" is, with and without a group. While one
// is held the source is not ready, and a record produced then (stamped
// after start-up) is delivered; once ready, a record produced is delivered
// even if stamped long before start-up, so the end offset must have been
// listed before Ready.
func TestNothingMissedAfterReady(t *testing.T) {
	for _, group := range []string{"", "g"} {
		for hold := 1; hold <= 3; hold++ {
			t.Run(fmt.Sprintf("group=%q/hold=%d", group, hold), func(t *testing.T) {
				c := newCluster(t, kfake.SeedTopics(2, "t"))
				held, release := make(chan struct{}), make(chan struct{})
				var once sync.Once
				n := 0 // listings of t seen; used by the control function only
				c.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
					for _, tp := range req.(*kmsg.ListOffsetsRequest).Topics {
						if tp.Topic != "t" {
							continue
						}
						if n++; n == hold {
							once.Do(func() {
								close(held)
								c.SleepControl(func() { <-release })
							})
						}
						break
					}
					return nil, nil, false
				})
				var releaseOnce sync.Once
				unhold := func() { releaseOnce.Do(func() { close(release) }) }
				t.Cleanup(unhold) // before the cluster closes

				p := newProducer(t, c.ListenAddrs())
				r := startSource(t, Config{Brokers: c.ListenAddrs(), Topic: "t", Group: group, ResetLatest: true})
				select {
				case <-held:
				case <-time.After(waitFor):
					t.Fatalf("listing %d never came; log:\n%s", hold, r.log)
				}
				if r.src.Ready() {
					t.Error("ready while the start offsets are being listed")
				}
				produce(t, p, &kgo.Record{Topic: "t", Partition: 0, Value: []byte("during")})
				unhold()
				eventually(t, "ready", r.src.Ready)
				produce(t, p, &kgo.Record{Topic: "t", Partition: 0, Value: []byte("after"), Timestamp: time.Now().Add(-time.Hour)})
				for _, want := range []string{"during", "after"} {
					if got := r.next(t); string(got.Value) != want {
						t.Fatalf("got %q, want %q", got.Value, want)
					}
				}
			})
		}
	}
}

// TestConsumerGroupLatestResumesFromCommit: starting at the end applies
// only to partitions with no commit; a member resumes from the group's
// commit even where that is older than its start-up.
func TestConsumerGroupLatestResumesFromCommit(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	p := newProducer(t, c.ListenAddrs())
	cfg := Config{Brokers: c.ListenAddrs(), Topic: "t", Group: "g", ResetLatest: true}

	r := startSource(t, cfg)
	eventually(t, "ready", r.src.Ready)
	produce(t, p, &kgo.Record{Topic: "t", Value: []byte("a")})
	if got := r.next(t); string(got.Value) != "a" {
		t.Fatalf("first member got %q, want a", got.Value)
	}
	r.stop() // leaves the group, committing offset 1

	produce(t, p, &kgo.Record{Topic: "t", Value: []byte("b"), Timestamp: time.Now().Add(-time.Hour)})
	r2 := startSource(t, cfg)
	if got := r2.next(t); string(got.Value) != "b" || got.Offset != 1 {
		t.Errorf("second member got %q@%d first, want b@1 (the commit)", got.Value, got.Offset)
	}
}

// TestGroupMemberWithoutPartitionsReady: a member that the group gives no
// partition (more replicas than partitions) is ready; it has nothing to
// position.
func TestGroupMemberWithoutPartitionsReady(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	p := newProducer(t, c.ListenAddrs())
	cfg := Config{Brokers: c.ListenAddrs(), Topic: "t", Group: "g", ResetLatest: true}
	r1 := startSource(t, cfg)
	eventually(t, "first member ready", r1.src.Ready)
	r2 := startSource(t, cfg)
	eventually(t, "second member ready", r2.src.Ready)

	produce(t, p, &kgo.Record{Topic: "t", Value: []byte("x")})
	select {
	case got := <-r1.recs:
		if string(got.Value) != "x" {
			t.Errorf("got %q, want x", got.Value)
		}
	case got := <-r2.recs:
		if string(got.Value) != "x" {
			t.Errorf("got %q, want x", got.Value)
		}
	case <-time.After(waitFor):
		t.Fatalf("no member got the record; logs:\n%s\n%s", r1.log, r2.log)
	}
}
