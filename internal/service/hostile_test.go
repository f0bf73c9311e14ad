package service_test

import (
	"fmt"
	"os"
	"runtime"
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

// vmRSS returns this process's resident memory in bytes.
func vmRSS(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status:", err)
	}
	for l := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS line")
	return 0
}

// peakRSS samples vmRSS every 20 ms until stop is called, which returns
// the highest sample.
func peakRSS(b *testing.B) (stop func() int64) {
	var peak atomic.Int64
	peak.Store(vmRSS(b))
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if r := vmRSS(b); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return max(peak.Load(), vmRSS(b))
	}
}

// BenchmarkHostile measures the memory that hostile or huge input costs
// the service (in this process, with its clients and the broker): the
// peak RSS growth while two clients flood empty pings without reading
// (until the service closes them), and while a 200,000-row record, a
// 2,000,000-row gzip record (over MAX_RECORD_ROWS) or a gzip bomb of
// 64 MiB reaches two reading clients. MB-rss is the growth of the peak
// over the RSS before, closed the clients the service closed.
func BenchmarkHostile(b *testing.B) {
	startB := func(b *testing.B) (*e2etest.Producer, *e2etest.Service) {
		br := e2etest.StartBroker(b, "t", 1)
		s := e2etest.StartService(b, e2etest.BrokerEnv(br).With(e2etest.Env{"LOG_LEVEL": "error"}))
		s.WaitReady(b)
		return e2etest.NewProducer(b, br), s
	}
	b.Run("ping-flood", func(b *testing.B) {
		var growth, closed float64
		for range b.N {
			_, s := startB(b)
			ping := e2etest.MaskedFrame(true, ws.OpPing, nil)
			burst := []byte(strings.Repeat(string(ping), 64))
			runtime.GC()
			stop := peakRSS(b)
			before := vmRSS(b)
			var wg sync.WaitGroup
			for range 2 {
				f := e2etest.Connect(b, s.URL("/ws"), e2etest.WithReadBuffer(4096))
				wg.Go(func() {
					for f.WriteRaw(burst) == nil {
					}
				})
			}
			wg.Wait() // the service closed both
			growth += float64(stop()-before) / 1e6
			closed += float64(s.Stats(b).Hub.Closes["control_flood"])
		}
		b.ReportMetric(growth/float64(b.N), "MB-rss")
		b.ReportMetric(closed/float64(b.N), "closed")
	})
	bomb := `{"Timestamps":[1],"NumericValues":{"v":[1]},"pad":"` + strings.Repeat("0", 64<<20) + `"}`
	records := []struct {
		name  string
		value string
		rows  int
	}{
		{"rows=200000", timeseries(200_000, false), 200_000},
		{"rows=2000000", timeseries(2_000_000, true), 0},
		{"gzip-bomb-64MiB", bomb, 0},
	}
	for _, r := range records {
		b.Run(r.name, func(b *testing.B) {
			value := gzipped(b, r.value)
			var growth, closed float64
			for range b.N {
				p, s := startB(b)
				clients := []*e2etest.Client{e2etest.Connect(b, s.URL("/ws")), e2etest.Connect(b, s.URL("/ws"))}
				runtime.GC()
				stop := peakRSS(b)
				before := vmRSS(b)
				p.Produce([]byte("k"), value, quixGzipHeaders("TimeseriesData")...)
				p.Produce([]byte("k"), []byte(`{"after":true}`))
				var wg sync.WaitGroup
				for _, c := range clients {
					wg.Go(func() {
						ctx, cancel := e2etest.Context(b)
						defer cancel()
						for range r.rows + 1 {
							if _, err := c.NextText(ctx); err != nil {
								return
							}
						}
					})
				}
				wg.Wait()
				growth += float64(stop()-before) / 1e6
				for _, n := range s.Stats(b).Hub.Closes {
					closed += float64(n)
				}
			}
			b.ReportMetric(growth/float64(b.N), "MB-rss")
			b.ReportMetric(closed/float64(b.N), "closed")
		})
	}
}
