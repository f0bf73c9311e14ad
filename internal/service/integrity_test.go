package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wsdest/wsdest/internal/e2etest"
)

// These tests hold the resume path to its promise with a real broker over
// TCP and real clients: a client that starts from a position gets every
// record Kafka holds exactly once, in partition order, whatever the
// history evicts meanwhile and however slow the broker answers, and a
// topic recreated under connected clients is announced to them.

// produceFill produces records from to to-1 like produceN, each padded to
// about 100 bytes, in batches of 100.
func produceFill(p *e2etest.Producer, from, to int) {
	pad := strings.Repeat("x", 80)
	for i := from; i < to; i += 100 {
		var recs []*kgo.Record
		for j := i; j < min(i+100, to); j++ {
			recs = append(recs, e2etest.Record([]byte(fmt.Sprintf("k%d", j%6)), []byte(fmt.Sprintf(`{"i":%d,"pad":%q}`, j, pad))))
		}
		p.ProduceRecords(recs...)
	}
}

// checkContiguous fails unless got holds, for every partition, the
// offsets from 0 on with none missing, each once, in order, and no notice.
func checkContiguous(t *testing.T, got []envMsg) {
	t.Helper()
	next := map[int32]int64{}
	for _, m := range got {
		if m.Notice != "" {
			t.Fatalf("unexpected notice %s", m.raw)
		}
		if m.Offset != next[m.Partition] {
			t.Fatalf("partition %d: offset %d where %d was due", m.Partition, m.Offset, next[m.Partition])
		}
		next[m.Partition]++
	}
}

// A client that starts from the earliest record over a slow link (a
// small receive buffer, read slowly) while records keep arriving and the
// history turns over many times gets every offset exactly once, in
// partition order, and no gap notice: what the history evicted before the
// client reached it comes from Kafka.
func TestResumeSlowClientWhileHistoryEvicts(t *testing.T) {
	t.Parallel()
	b := e2etest.StartBroker(t, "evict", 3)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{"HISTORY_BYTES": "256KiB"}))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	const total = 6000
	produceFill(p, 0, total/3)

	c := e2etest.Connect(t, svc.URL("/ws?envelope=true&from=earliest"), e2etest.WithReadBuffer(4<<10))
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := total / 3; i < total; i += 200 {
			produceFill(p, i, i+200)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var got []envMsg
	for len(got) < total {
		got = append(got, decodeEnv(t, c.Next(t)))
		if len(got)%20 == 0 {
			time.Sleep(2 * time.Millisecond) // a slow reader
		}
	}
	<-produced
	checkStream(t, got, span(0, total))
	checkContiguous(t, got)
	c.ExpectQuiet(t)
}

// delayFetches makes the broker answer every fetch d late.
func delayFetches(b *e2etest.Broker, d time.Duration) {
	c := b.Cluster()
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { time.Sleep(d) })
		return nil, nil, false
	})
}

// A broker that answers fetches 1.5 s late is slow, not empty: a client
// from the earliest record gets all 30 records, each once (it may be
// closed with 1011 and resume from its cursor, never lose or repeat one).
func TestResumeSlowBroker(t *testing.T) {
	b := e2etest.StartBroker(t, "slow", 3, kfake.AllowAutoTopicCreation())
	p := e2etest.NewProducer(t, b)
	produceN(p, 0, 30, time.Time{})
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	delayFetches(b, 1500*time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var got []envMsg
	from := "earliest"
	for reconnects := 0; len(got) < 30; reconnects++ {
		if reconnects > 5 {
			t.Fatalf("closed with 1011 %d times; got %d records", reconnects, len(got))
		}
		c, err := e2etest.Dial(ctx, svc.URL("/ws?envelope=true&from="+from))
		if err != nil {
			t.Fatal(err)
		}
		for len(got) < 30 {
			f, err := c.NextFrame(ctx)
			if err != nil {
				t.Fatalf("after %d records: %v", len(got), err)
			}
			if f.Op == ws.OpClose {
				code, reason := f.CloseStatus()
				if code != 1011 {
					t.Fatalf("closed with %d %q", code, reason)
				}
				t.Logf("closed with %d %q after %d records; resuming", code, reason, len(got))
				break
			}
			m := decodeEnv(t, f.Payload)
			got = append(got, m)
			from = m.Cursor
		}
		_ = c.Close()
	}
	checkStream(t, got, span(0, 30))
}

// A topic deleted and created again under connected clients: every live
// envelope and SSE client gets the reset notice before the first record
// of the new topic (a client that de-duplicates by partition and offset
// would otherwise drop every new record).
func TestLiveClientsToldOfRecreatedTopic(t *testing.T) {
	b := e2etest.StartBroker(t, "recreate", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	ws1 := e2etest.Connect(t, svc.URL("/ws?envelope=true"))
	sse := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?envelope=true"), nil)
	produceN(p, 0, 5, time.Time{})
	readEnv(t, ws1, 5)
	for range 5 {
		sse.Next(t)
	}

	p = recreateTopic(t, b, p)
	// Records until wsdest follows the new topic.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 100; ; i++ {
			produceN(p, i, i+1, time.Time{})
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-done }()
	first := decodeEnv(t, ws1.Next(t))
	if first.Notice != "reset" || first.Reason != "topic_recreated" {
		t.Fatalf("websocket: first message after the recreation %s, want the reset notice", first.raw)
	}
	if m := decodeEnv(t, ws1.Next(t)); m.Offset != 0 || m.value(t) != 100 {
		t.Fatalf("websocket: first record after the reset %s, want offset 0 of the new topic", m.raw)
	}
	ev := sse.Next(t)
	if n := decodeEnv(t, []byte(ev.Data)); n.Notice != "reset" || ev.ID != "" {
		t.Fatalf("sse: first event after the recreation %+v, want the reset notice (no id)", ev)
	}
	if m := decodeEnv(t, []byte(sse.Next(t).Data)); m.Offset != 0 || m.value(t) != 100 {
		t.Fatalf("sse: first record after the reset %s, want offset 0 of the new topic", m.raw)
	}
}
