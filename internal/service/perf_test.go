package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest/internal/config"
)

// perfConfig is the service configuration the benchmarks use: a broker of
// their own, a free port, logs off.
func perfConfig(b *testing.B, broker string, extra ...string) config.Config {
	b.Helper()
	env := map[string]string{
		"Quix__Broker__Address": broker,
		"input":                 "bench",
		"HOST":                  "127.0.0.1",
		"PORT":                  "0",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

func perfBroker(b *testing.B) (string, *kgo.Client) {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return addr, p
}

// BenchmarkIngest measures the consume path with no clients: fetch from the
// broker, decode, route. The topic is filled first; the service then reads
// it from the earliest offset. records/s is the figure to read.
func BenchmarkIngest(b *testing.B) {
	addr, p := perfBroker(b)
	const perIter = 200_000
	ctx := b.Context()
	fill := func() {
		recs := make([]*kgo.Record, 0, 10_000)
		for i := range perIter {
			v := fmt.Appendf(nil, `{"Timestamp":%d,"temperature":21.5,"humidity":40.1,"Tags":{"location":"lab"}}`, i)
			recs = append(recs, &kgo.Record{Key: []byte("sensor-" + strconv.Itoa(i%4)), Value: v})
			if len(recs) == cap(recs) {
				if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					b.Fatal(err)
				}
				recs = recs[:0]
			}
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill()
		cfg := perfConfig(b, addr, "AUTO_OFFSET_RESET", "earliest")
		svc, err := New(ctx, cfg, logger)
		if err != nil {
			b.Fatal(err)
		}
		want := uint64(perIter * (i + 1))
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- svc.Run(rctx) }()
		for svc.enc.Stats().Records < want {
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(perIter*b.N)/total.Seconds(), "records/s")
}

// BenchmarkFirstRecord measures the time from the start of the service
// (broker already up, a producer writing a record every millisecond) to the
// first record delivered to a client that connects at once.
func BenchmarkFirstRecord(b *testing.B) {
	addr, p := perfBroker(b)
	ctx := b.Context()
	var stop atomic.Bool
	b.Cleanup(func() { stop.Store(true) })
	go func() {
		for !stop.Load() {
			p.Produce(ctx, &kgo.Record{Value: []byte(`{"n":1}`)}, nil)
			time.Sleep(time.Millisecond)
		}
	}()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var total time.Duration
	for range b.N {
		start := time.Now()
		svc, err := New(ctx, perfConfig(b, addr), logger)
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(rctx) }()
		conn, br, _, err := ws.Dial(ctx, "ws://"+svc.Addr().String()+"/ws")
		if err != nil {
			b.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		// A frame that came with the handshake's answer is in br.
		rw := io.ReadWriter(conn)
		if br != nil {
			rw = struct {
				io.Reader
				io.Writer
			}{io.MultiReader(br, conn), conn}
		}
		if _, err := wsutil.ReadServerText(rw); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/first-record")
}
