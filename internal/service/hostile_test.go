package service_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/encode"
)

// timeseries returns a TimeseriesData payload of n rows with one numeric
// parameter; the timestamps count from 0, or are all 1 when same is set
// (a payload that compresses to almost nothing).
func timeseries(n int, same bool) string {
	var b strings.Builder
	b.WriteString(`{"Timestamps":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if same {
			b.WriteByte('1')
		} else {
			fmt.Fprint(&b, i)
		}
	}
	b.WriteString(`],"NumericValues":{"v":[`)
	b.WriteString(strings.TrimSuffix(strings.Repeat("1,", n), ","))
	b.WriteString(`]}}`)
	return b.String()
}

func quixGzipHeaders(model string) []kgo.RecordHeader {
	return []kgo.RecordHeader{e2etest.Header("__Q_ModelKey", model), e2etest.Header("__Q_CodecId", "[GZIP]JT")}
}

// TestLargeRecordDelivered: a legitimate Quix record of 200,000 rows (7 MB
// of frames, more than MAX_QUEUE_BYTES) reaches every client that reads,
// whole and in order, and none is closed; the next record follows it.
func TestLargeRecordDelivered(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, nil)
	const rows = 200_000
	clients := []*e2etest.Client{e2etest.Connect(t, s.URL("/ws")), e2etest.Connect(t, s.URL("/ws/k"))}
	p.Produce([]byte("k"), gzipped(t, timeseries(rows, false)), quixGzipHeaders("TimeseriesData")...)
	p.Produce([]byte("k"), []byte(`{"after":true}`))

	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	for i, c := range clients {
		wg.Go(func() {
			ctx, cancel := e2etest.Context(t)
			defer cancel()
			for r := range rows {
				f, err := c.NextText(ctx)
				if err != nil {
					errs[i] = fmt.Errorf("row %d: %w", r, err)
					return
				}
				if want := fmt.Sprintf(`{"v":1,"Tags":{},"Timestamp":%d}`, r); string(f) != want {
					errs[i] = fmt.Errorf("row %d = %s, want %s", r, f, want)
					return
				}
			}
			f, err := c.NextText(ctx)
			if err != nil || string(f) != `{"after":true}` {
				errs[i] = fmt.Errorf("after the large record: %s, %v", f, err)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
	st := s.Stats(t)
	for r, n := range st.Hub.Closes {
		if n != 0 {
			t.Errorf("%d clients closed (%s)", n, r)
		}
	}
}

// TestRecordOverLimitsSkipped: a Quix record with more rows than
// MAX_RECORD_ROWS (2,000,000 rows in 4 KB of gzip), or a gzip bomb past
// MAX_DECODED_BYTES (16 MiB of zeros), is dropped, counted and logged with its position;
// the client stays and gets the next record.
func TestRecordOverLimitsSkipped(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, e2etest.Env{"MAX_DECODED_BYTES": "12MiB"})
	c := e2etest.Connect(t, s.URL("/ws"))

	many := p.Produce([]byte("k"), gzipped(t, timeseries(2_000_000, true)), quixGzipHeaders("TimeseriesData")...)
	bomb := `{"Timestamps":[1],"NumericValues":{"v":[1]},"pad":"` + strings.Repeat("0", 16<<20) + `"}`
	p.Produce([]byte("k"), gzipped(t, bomb), quixGzipHeaders("TimeseriesData")...)
	p.Produce([]byte("k"), []byte(`{"after":true}`))
	if got := c.Next(t); string(got) != `{"after":true}` {
		t.Fatalf("got %.60s, want the record after the dropped ones", got)
	}
	st := s.Stats(t)
	if n := st.Decoder.Skipped[encode.SkipTooLarge]; n != 2 {
		t.Errorf("too_large = %d, want 2", n)
	}
	if n := st.Hub.Clients; n != 1 {
		t.Errorf("%d clients, want 1", n)
	}
	lines := s.Log.Lines("over MAX_RECORD_ROWS or MAX_DECODED_BYTES")
	// Rate-limited to one line per 10 s (tested in internal/encode): the
	// second record's line appears only if the run took that long.
	if len(lines) == 0 || len(lines) > 2 {
		t.Fatalf("%d warnings, want 1 (or 2 on a slow run): %q", len(lines), lines)
	}
	for _, want := range []string{"topic=t", "partition=0", fmt.Sprintf("offset=%d", many.Offset), "more than 250000 timestamps"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("warning %q lacks %q", lines[0], want)
		}
	}
}

// TestPingFloodClosed: two clients that send empty pings as fast as they
// can and never read are both closed (control_flood), while a client that
// reads keeps getting every record.
func TestPingFloodClosed(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, nil)
	good := e2etest.Connect(t, s.URL("/ws"))
	ping := e2etest.MaskedFrame(true, ws.OpPing, nil)
	burst := []byte(strings.Repeat(string(ping), 64))
	var wg sync.WaitGroup
	for range 2 {
		f := e2etest.Connect(t, s.URL("/ws"), e2etest.WithReadBuffer(4096))
		wg.Go(func() {
			// Until the server closes the connection, which ends the
			// writes with an error.
			for f.WriteRaw(burst) == nil {
			}
		})
	}
	e2etest.Eventually(t, "both flooders closed", func() bool {
		return s.Stats(t).Hub.Closes["control_flood"] == 2
	})
	wg.Wait()
	for i := range 20 {
		p.Produce([]byte("k"), fmt.Appendf(nil, `{"i":%d}`, i))
	}
	for i := range 20 {
		if got, want := string(good.Next(t)), fmt.Sprintf(`{"i":%d}`, i); got != want {
			t.Fatalf("reader got %s, want %s", got, want)
		}
	}
}

// statusKB returns the value, in bytes, of the line of /proc/self/status
// that starts with name (such as "VmRSS:").
func statusKB(name string) (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(l, name); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s line in /proc/self/status", name)
}

// peakRSS starts measuring this process's peak resident memory: it returns
// the resident size now and a function that returns the peak since. The
// heap is collected and what it freed given back to the system first, so
// that pages freed earlier cannot hide growth. On Linux the kernel's
// high-water mark is reset (5 written to /proc/self/clear_refs) and read
// back (VmHWM), which catches every peak however short; where clear_refs
// cannot be written, VmRSS is sampled every 5 ms instead, which can miss
// a short peak. It skips the benchmark where /proc/self/status is not
// there.
func peakRSS(b *testing.B) (before int64, peak func() int64) {
	b.Helper()
	must := func(n int64, err error) int64 {
		b.Helper()
		if err != nil {
			b.Skip("no resident size:", err)
		}
		return n
	}
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err == nil {
		before = must(statusKB("VmRSS:"))
		return before, func() int64 { return must(statusKB("VmHWM:")) }
	}
	before = must(statusKB("VmRSS:"))
	var high atomic.Int64
	high.Store(before)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if r, err := statusKB("VmRSS:"); err == nil && r > high.Load() {
					high.Store(r)
				}
			}
		}
	}()
	return before, func() int64 {
		close(done)
		<-finished
		return max(high.Load(), must(statusKB("VmRSS:")))
	}
}

// gzipBomb returns the gzip of a TimeseriesData payload padded with n
// zeros, compressed as it is written so that the payload itself is never
// held in memory.
func gzipBomb(b *testing.B, n int) []byte {
	b.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	zeros := bytes.Repeat([]byte("0"), 64<<10)
	_, err := io.WriteString(w, `{"Timestamps":[1],"NumericValues":{"v":[1]},"pad":"`)
	for ; err == nil && n > 0; n -= len(zeros) {
		_, err = w.Write(zeros[:min(n, len(zeros))])
	}
	if err == nil {
		_, err = io.WriteString(w, `"}`)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkHostile measures the memory that hostile or huge input costs,
// as the growth of the peak resident memory of the whole test process:
// the service with its default configuration (history on), the
// in-process broker, the producer and the clients together, so the
// service's own cost is at most that. The sub-benchmarks: two clients
// flood empty pings without reading (until the service closes them), and
// a 200,000-row record (to two clients, and to fifty: half subscribed to
// every key, half to the record's), a 2,000,000-row gzip record (over
// MAX_RECORD_ROWS) or a gzip bomb of 64 MiB reaches clients that keep up. Each fixture is built in its own sub-benchmark, so that no
// other one's stays live; the clients drop what they read without
// keeping it (Client.Discard). MB-rss is the peak over the resident size
// before (see peakRSS); closed counts the clients the service closed.
//
// Run each sub-benchmark in a fresh process (-benchtime 1x -count 1): a
// later run finds the heap the earlier ones grew.
func BenchmarkHostile(b *testing.B) {
	startB := func(b *testing.B) (*e2etest.Producer, *e2etest.Service) {
		br := e2etest.StartBroker(b, "t", 1)
		s := e2etest.StartService(b, e2etest.BrokerEnv(br).With(e2etest.Env{"LOG_LEVEL": "error"}))
		s.WaitReady(b)
		// No batch compression: the Quix records are gzipped already, and
		// the producer's compressor (lz4 takes 4 MB blocks) is not the
		// service's.
		return e2etest.NewProducer(b, br, kgo.ProducerBatchCompression(kgo.NoCompression())), s
	}
	b.Run("ping-flood", func(b *testing.B) {
		var growth, closed float64
		for range b.N {
			_, s := startB(b)
			ping := e2etest.MaskedFrame(true, ws.OpPing, nil)
			burst := []byte(strings.Repeat(string(ping), 64))
			before, peak := peakRSS(b)
			var wg sync.WaitGroup
			for range 2 {
				f := e2etest.Connect(b, s.URL("/ws"), e2etest.WithReadBuffer(4096))
				wg.Go(func() {
					for f.WriteRaw(burst) == nil {
					}
				})
			}
			wg.Wait() // the service closed both
			growth += float64(peak()-before) / 1e6
			closed += float64(s.Stats(b).Hub.Closes["control_flood"])
		}
		b.ReportMetric(growth/float64(b.N), "MB-rss")
		b.ReportMetric(closed/float64(b.N), "closed")
	})
	rows200k := func(b *testing.B) []byte { return gzipped(b, timeseries(200_000, false)) }
	records := []struct {
		name    string
		value   func(b *testing.B) []byte // the record's value, gzipped
		rows    int                       // the messages it yields
		clients int                       // reading clients, half on every key, half on the record's
	}{
		{"rows=200000", rows200k, 200_000, 2},
		{"rows=200000,clients=50", rows200k, 200_000, 50},
		{"rows=2000000", func(b *testing.B) []byte { return gzipped(b, timeseries(2_000_000, true)) }, 0, 2},
		{"gzip-bomb-64MiB", func(b *testing.B) []byte { return gzipBomb(b, 64<<20) }, 0, 2},
	}
	for _, r := range records {
		b.Run(r.name, func(b *testing.B) {
			value := r.value(b)
			var growth, closed float64
			for range b.N {
				p, s := startB(b)
				var clients []*e2etest.Client
				for i := range r.clients {
					path := "/ws"
					if i%2 == 1 {
						path = "/ws/k"
					}
					clients = append(clients, e2etest.Connect(b, s.URL(path)))
				}
				before, peak := peakRSS(b)
				p.Produce([]byte("k"), value, quixGzipHeaders("TimeseriesData")...)
				p.Produce([]byte("k"), []byte(`{"after":true}`))
				var wg sync.WaitGroup
				errs := make([]error, len(clients))
				for i, c := range clients {
					wg.Go(func() {
						ctx, cancel := e2etest.Context(b)
						defer cancel()
						_, errs[i] = c.Discard(ctx, r.rows+1)
					})
				}
				wg.Wait()
				growth += float64(peak()-before) / 1e6
				for i, err := range errs {
					if err != nil {
						b.Errorf("client %d: %v", i, err)
					}
				}
				for _, n := range s.Stats(b).Hub.Closes {
					closed += float64(n)
				}
			}
			b.ReportMetric(growth/float64(b.N), "MB-rss")
			b.ReportMetric(closed/float64(b.N), "closed")
		})
	}
}
