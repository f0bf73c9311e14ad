package service

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// seedRecords is how many records BenchmarkSnapshotSeed reads back.
var seedRecords = flag.Int("seed-records", 1_000_000, "records BenchmarkSnapshotSeed reads back at start-up")

// fillKeys produces n records of 300-byte JSON values over keys distinct
// keys to the bench topic.
func fillKeys(b *testing.B, p *kgo.Client, n, keys int) {
	b.Helper()
	pad := strings.Repeat("x", 260)
	recs := make([]*kgo.Record, 0, 10_000)
	for i := range n {
		v := fmt.Appendf(nil, `{"i":%d,"pad":%q}`, i, pad)
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "sensor-%d", i%keys), Value: v})
		if len(recs) == cap(recs) || i == n-1 {
			if err := p.ProduceSync(b.Context(), recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

// peakHeap samples the heap every 10 ms until stop is called, which
// returns the highest HeapAlloc seen.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

// BenchmarkSnapshotSeed measures seeding the table at start-up: the topic
// holds -seed-records records (300-byte values over 100,000 keys, the
// default bound); the figure is records read back per second, from the
// service's start until /readyz would answer 200, and the peak heap.
func BenchmarkSnapshotSeed(b *testing.B) {
	addr, p := perfBroker(b)
	fillKeys(b, p, *seedRecords, 100_000)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var total time.Duration
	var peak uint64
	for range b.N {
		runtime.GC()
		stopPeak := peakHeap()
		start := time.Now()
		svc, err := New(b.Context(), perfConfig(b, addr, "SNAPSHOT_LOOKBACK", "earliest"), logger)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		for !svc.Ready() {
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		peak = max(peak, stopPeak())
		if got := svc.table.Stats().Keys; got != min(100_000, *seedRecords) {
			b.Fatalf("%d keys seeded", got)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(*seedRecords*b.N)/total.Seconds(), "records/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// BenchmarkSnapshotToClient measures a 10,000-key snapshot reaching a new
// envelope client over a real socket: from the dial to its snapshot_end
// notice.
func BenchmarkSnapshotToClient(b *testing.B) {
	addr, p := perfBroker(b)
	const keys = 10_000
	fillKeys(b, p, keys, keys)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := New(b.Context(), perfConfig(b, addr, "SNAPSHOT_LOOKBACK", "earliest"), logger)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !svc.Ready() || svc.table.Stats().Keys < keys {
		time.Sleep(time.Millisecond)
	}
	url := "ws://" + svc.Addr().String() + "/ws?envelope=true&snapshot=true"
	b.ResetTimer()
	for range b.N {
		conn, br, _, err := ws.Dial(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		// Frames that came with the handshake's answer are in br.
		rw := io.ReadWriter(conn)
		if br != nil {
			rw = struct {
				io.Reader
				io.Writer
			}{io.MultiReader(br, conn), conn}
		}
		n := 0
		for {
			msg, err := wsutil.ReadServerText(rw)
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(string(msg), `{"notice":"snapshot_end"`) {
				break
			}
			n++
		}
		conn.Close()
		if n != keys {
			b.Fatalf("a snapshot of %d keys", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/snapshot")
}
