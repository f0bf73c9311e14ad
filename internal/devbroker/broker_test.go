package devbroker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest/internal/testlog"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func start(t *testing.T, cfg Config, logger *slog.Logger) *Broker {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	b, err := Start(t.Context(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type row struct {
	Timestamp   int64
	Temperature *float64 `json:"temperature"`
	Humidity    *float64 `json:"humidity"`
	Tags        map[string]string
}

func TestDemoRecords(t *testing.T) {
	var logs testlog.Buffer
	b := start(t, Config{Topic: "input", Demo: true, DemoInterval: 5 * time.Millisecond},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want the real port", b.Addr())
	}
	cl := newClient(t, b.Addr(), kgo.ConsumeTopics("input"))

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	seen := map[string]int{}
	partitions := map[int32]bool{}
	for len(seen) < numSensors || minCount(seen) < 3 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("seen %v before timeout", seen)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			key := string(r.Key)
			seen[key]++
			partitions[r.Partition] = true
			var v row
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("record %s value %q: %v", key, r.Value, err)
			}
			if v.Timestamp <= 0 || v.Temperature == nil || v.Humidity == nil || v.Tags["location"] == "" {
				t.Fatalf("record %s value %s lacks a field", key, r.Value)
			}
			if *v.Humidity < 0 || *v.Humidity > 100 || *v.Temperature < 0 || *v.Temperature > 40 {
				t.Fatalf("record %s value %s out of range", key, r.Value)
			}
		})
	}
	for k := range seen {
		if !strings.HasPrefix(k, "sensor-") || len(k) != len("sensor-1") {
			t.Errorf("unexpected key %q", k)
		}
	}

	out := logs.String()
	for _, want := range []string{"level=WARN", "in memory only", b.Addr(), "kcat -P -b " + b.Addr() + " -t input -k my-key", "DEMO_DATA=false", "Quix__Broker__Address"} {
		if !strings.Contains(out, want) {
			t.Errorf("start log lacks %q:\n%s", want, out)
		}
	}
}

func minCount(m map[string]int) int {
	n := -1
	for _, c := range m {
		if n < 0 || c < n {
			n = c
		}
	}
	return n
}

func TestNoDemoProducesNothing(t *testing.T) {
	b := start(t, Config{Topic: "input"}, discard())
	cl := newClient(t, b.Addr())
	// Only our marker may be in the topic once it is acknowledged: with the
	// demo off nothing else writes to the broker.
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "input", Value: []byte("{}")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), "input")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	n := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("partition %d: %v", o.Partition, o.Err)
		}
		n++
		total += o.Offset
	})
	if n != Partitions || total != 1 {
		t.Fatalf("got %d partitions holding %d records, want %d holding 1", n, total, Partitions)
	}
}

func TestAutoTopicCreation(t *testing.T) {
	b := start(t, Config{Topic: "input"}, discard())
	cl := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics("other"))
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "other", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("record on auto-created topic not consumed")
		}
		if recs := fs.Records(); len(recs) > 0 {
			if string(recs[0].Value) != "v" {
				t.Fatalf("value %q", recs[0].Value)
			}
			return
		}
	}
}

func TestAddrInUse(t *testing.T) {
	b := start(t, Config{Topic: "input"}, discard())
	_, err := Start(t.Context(), Config{Addr: b.Addr(), Topic: "input"}, discard())
	if err == nil {
		t.Fatal("second Start on the same address succeeded")
	}
	want := "dev broker: listen " + b.Addr() + ": address already in use (set DEV_BROKER_ADDR, or point Quix__Broker__Address at your Kafka)"
	if err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v does not wrap EADDRINUSE", err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := Start(t.Context(), Config{Addr: "127.0.0.1:0"}, discard()); err == nil {
		t.Error("Start without a topic succeeded")
	}
	if _, err := Start(t.Context(), Config{Addr: "127.0.0.1:notaport", Topic: "t"}, discard()); err == nil {
		t.Error("Start with a bad address succeeded")
	}
}

// TestCloseStopsEverything checks that after Close (and the closing of our
// own client) the goroutine count returns to where it was. kfake ends its
// connection goroutines asynchronously, hence the bounded wait.
func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	b, err := Start(t.Context(), Config{Addr: "127.0.0.1:0", Topic: "input", Demo: true, DemoInterval: time.Millisecond}, discard())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("input"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	for len(cl.PollFetches(ctx).Records()) == 0 && ctx.Err() == nil {
	}
	cancel()
	cl.Close()
	b.Close()
	b.Close() // idempotent

	if _, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		t.Error("broker still accepts connections after Close")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestCancelStopsDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	b, err := Start(ctx, Config{Addr: "127.0.0.1:0", Topic: "input", Demo: true, DemoInterval: time.Millisecond}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cancel()
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Fatal("demo producer still running after its context was cancelled")
	}
}

func TestDemoDeterministic(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a, b := newDemo(42), newDemo(42)
	for range 50 {
		ra, rb := a.round(now), b.round(now)
		for i := range ra {
			if !bytes.Equal(ra[i].Value, rb[i].Value) || !bytes.Equal(ra[i].Key, rb[i].Key) {
				t.Fatalf("same seed, different records: %s %s", ra[i].Value, rb[i].Value)
			}
		}
	}
	got := string(newDemo(1).round(now)[0].Value)
	if !strings.HasPrefix(got, `{"Timestamp":1700000000000000000,"temperature":`) || !strings.HasSuffix(got, `,"Tags":{"location":"lab"}}`) {
		t.Errorf("value %s", got)
	}
}

type fakeListener struct{ net.Listener }

func (fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero, Port: 1234} }

func TestAdvertisedAddr(t *testing.T) {
	if got := advertised(fakeListener{}).Addr().String(); got != "127.0.0.1:1234" {
		t.Errorf("unspecified host advertised as %s", got)
	}
}
