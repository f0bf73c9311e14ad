package hub

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// discardConn is a net.Conn that accepts every write at once.
type discardConn struct {
	net.Conn // nil: only the methods below are used
	closed   atomic.Bool
}

func (d *discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (d *discardConn) SetWriteDeadline(time.Time) error { return nil }
func (d *discardConn) Close() error                     { d.closed.Store(true); return nil }

// waitWritten spins until the hub has written n frames in all.
func waitWritten(b *testing.B, h *Hub, n uint64) {
	for h.stats.written.Load() < n {
		if h.stats.clients.Load() == 0 {
			b.Fatal("all clients gone")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func benchFrames(n int) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		p := fmt.Appendf(nil, `{"ts":%d,"seq":%d,"pad":"0123456789012345678901234567890123456789"}`, time.Now().UnixNano(), i)
		msgs[i] = &message.Message{Key: fmt.Appendf(nil, "k-%d", i%100), Frames: [message.NumShapes][]byte{wsframe.Text(p)}}
	}
	return msgs
}

// BenchmarkPublish measures the fan-out of one batch of messages to 10,000
// clients that take everything, until every frame is written (to sockets
// that never block). ns/delivery is the cost per frame per client.
func BenchmarkPublish(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=10000/batch=%d", batch), func(b *testing.B) {
			const clients = 10000
			// No write spacing: this measures the hub's own work.
			h := New(Config{PingInterval: -1})
			for range clients {
				add(h, &discardConn{}, Subscription{All: true}, nil)
			}
			msgs := benchFrames(batch)
			b.ResetTimer()
			for i := range b.N {
				h.Publish(msgs)
				waitWritten(b, h, uint64(i+1)*uint64(batch)*clients)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch*clients), "ns/delivery")
		})
	}
}

// BenchmarkRoute measures routing alone: 10,000 clients each subscribed to
// one exact key (found by map lookup), to one pattern (tested one by one),
// or to one exact key with max_rate=1 (a rate group of its own, found by
// its key), for messages that match one client each.
func BenchmarkRoute(b *testing.B) {
	for _, kind := range []string{"exact", "glob", "exact-rated"} {
		b.Run(kind, func(b *testing.B) {
			const clients = 10000
			h := New(Config{PingInterval: -1})
			for i := range clients {
				k := fmt.Sprintf("k-%d", i)
				sub := Subscription{Keys: []string{k}}
				switch kind {
				case "glob":
					sub.Keys[0] += "*"
				case "exact-rated":
					sub.MaxRate = 1
				}
				add(h, &discardConn{}, sub, nil)
			}
			msgs := benchFrames(100)
			b.ResetTimer()
			for range b.N {
				h.Publish(msgs)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/message")
		})
	}
}

// BenchmarkWriterTCP measures the whole write path over loopback TCP: the
// writer pool's non-blocking writev to 200 sockets, each drained by a
// reader goroutine, for publishes of 1 or 16 messages of ~100 bytes.
// ns/delivery is the cost per frame per client (both sides share the
// CPUs); frames/write is how many frames each write carried.
func BenchmarkWriterTCP(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=200/batch=%d", batch), func(b *testing.B) {
			const clients = 200
			h := New(Config{PingInterval: -1})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = h.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			if !spinUntil(func() bool {
				h.pool.mu.Lock()
				defer h.pool.mu.Unlock()
				return h.pool.running
			}) {
				b.Fatal("the writer pool never started")
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			for range clients {
				cli, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				srv, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				defer cli.Close()
				go func() { _, _ = io.Copy(io.Discard, cli) }()
				add(h, srv, Subscription{All: true}, nil)
			}
			msgs := benchFrames(batch)
			w0 := h.stats.writes.Load()
			b.ResetTimer()
			for i := range b.N {
				h.Publish(msgs)
				waitWritten(b, h, uint64(i+1)*uint64(batch)*clients)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch*clients), "ns/delivery")
			b.ReportMetric(float64(b.N*batch*clients)/float64(h.stats.writes.Load()-w0), "frames/write")
		})
	}
}

// BenchmarkPublishGrants measures the per-record cost of grants: 10,000
// clients in 1,000 groups of 10 (a tenant each), for batches of 16
// records spread over the tenants. Each grant=X case is compared with the
// same clients asking for the same keys without a grant (sub=X): a
// pattern ("t-42/*", tested record by record) or one exact key (found in
// the shard's map). sub=all is every client taking every record, with no
// grant. ns/delivery is the cost per frame delivered, ns/record the cost
// per record published.
func BenchmarkPublishGrants(b *testing.B) {
	const clients, tenants, batch = 10000, 1000, 16
	msgs := make([]*message.Message, batch)
	for i := range msgs {
		p := fmt.Appendf(nil, `{"seq":%d,"pad":"0123456789012345678901234567890123456789"}`, i)
		msgs[i] = &message.Message{Key: fmt.Appendf(nil, "t-%d/dev", i*61%tenants), Frames: [message.NumShapes][]byte{wsframe.Text(p)}}
	}
	subs := map[string]func(t int) Subscription{
		"sub=all":       func(int) Subscription { return Subscription{All: true} },
		"sub=pattern":   func(t int) Subscription { return Subscription{Keys: []string{fmt.Sprintf("t-%d/*", t)}} },
		"grant=pattern": func(t int) Subscription { return Subscription{All: true, Grant: []string{fmt.Sprintf("t-%d/*", t)}} },
		"sub=exact":     func(t int) Subscription { return Subscription{Keys: []string{fmt.Sprintf("t-%d/dev", t)}} },
		"grant=exact":   func(t int) Subscription { return Subscription{All: true, Grant: []string{fmt.Sprintf("t-%d/dev", t)}} },
	}
	for _, name := range []string{"sub=all", "sub=pattern", "grant=pattern", "sub=exact", "grant=exact"} {
		b.Run(name, func(b *testing.B) {
			h := New(Config{PingInterval: -1})
			deliveries := uint64(0)
			for i := range clients {
				sub := subs[name](i % tenants)
				add(h, &discardConn{}, sub, nil)
				c := compile(sub)
				for _, m := range msgs {
					if c.matches(m.Key) {
						deliveries++
					}
				}
			}
			b.ResetTimer()
			for i := range b.N {
				h.Publish(msgs)
				waitWritten(b, h, uint64(i+1)*deliveries)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(uint64(b.N)*deliveries), "ns/delivery")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
		})
	}
}

// BenchmarkMaxRate publishes 1,000 records a second over 100 keys, one
// record per Publish paced by a ticker, to 1,000 clients that take every
// record, with max_rate=1 and without, and reports the process's CPU time
// per published record (cpu-ns/record: publishing, the writers and the
// rate timers) and the frames written per record. ns/op is wall time, set
// by the pace. Run it with a fixed count, e.g. -benchtime=3000x.
func BenchmarkMaxRate(b *testing.B) {
	for _, rate := range []float64{0, 1} {
		b.Run(fmt.Sprintf("clients=1000/keys=100/records_per_s=1000/max_rate=%g", rate), func(b *testing.B) {
			h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
			for range 1000 {
				h.AddClient(&discardConn{}, ClientOptions{Sub: Subscription{All: true, MaxRate: rate}})
			}
			msgs := benchFrames(100)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			start := cpuTime(b)
			b.ResetTimer()
			for i := range b.N {
				<-tick.C
				h.Publish(msgs[i%100 : i%100+1])
			}
			if rate == 0 {
				waitWritten(b, h, uint64(b.N)*1000)
			}
			b.StopTimer()
			cpu := cpuTime(b) - start
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/record")
			b.ReportMetric(float64(h.Stats().Written)/float64(b.N), "frames/record")
			_ = h.Shutdown(context.Background())
		})
	}
}

// cpuTime returns the process's user and system CPU time in ns.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
