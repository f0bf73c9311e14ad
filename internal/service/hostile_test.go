package service_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

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
// MAX_DECODED_BYTES, is dropped, counted and logged with its position;
// the client stays and gets the next record.
func TestRecordOverLimitsSkipped(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, e2etest.Env{"MAX_DECODED_BYTES": "12MiB"})
	c := e2etest.Connect(t, s.URL("/ws"))

	many := p.Produce([]byte("k"), gzipped(t, timeseries(2_000_000, true)), quixGzipHeaders("TimeseriesData")...)
	bomb := `{"Timestamps":[1],"NumericValues":{"v":[1]},"pad":"` + strings.Repeat("0", 64<<20) + `"}`
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
	if len(lines) != 1 { // rate-limited: one line per 10 s
		t.Fatalf("%d warnings, want 1: %q", len(lines), lines)
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
