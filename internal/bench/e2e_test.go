package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsdest/wsdest/internal/bench/benchtest"
	"github.com/wsdest/wsdest/internal/devbroker"
)

// workerEnv marks a run of this test binary as a wsbench worker.
const workerEnv = "BENCH_TEST_WORKER"

// TestMain lets the test binary stand in for the wsbench binary when a run
// with several processes re-executes it as a worker.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" && len(os.Args) == 3 && os.Args[1] == WorkerFlag {
		if err := ServeWorker(context.Background(), os.Args[2], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func spawnTestWorker(ctx context.Context, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	return cmd
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func TestRunEndToEnd(t *testing.T) {
	tests := []struct {
		name     string
		clients  int
		rate     float64
		duration time.Duration
		size     int
		keys     int
		stall    float64
		filter   bool
		procs    int
		idle     int
	}{
		{name: "broadcast", clients: 20, rate: 1000, duration: 300 * time.Millisecond, size: 200, keys: 4},
		{name: "key filter", clients: 20, rate: 1000, duration: 300 * time.Millisecond, keys: 3, filter: true},
		// 750 records of 2 KB: more than the server's queue (benchtest.Queue)
		// and the stalled clients' socket buffers (bounded by StallRcvBuf)
		// hold, so every stalled client overflows; the readers cannot, as
		// the server waits for them (see benchtest.Server), however slow
		// the machine makes them.
		{name: "stalled clients", clients: 12, rate: 500, duration: 1500 * time.Millisecond, size: 2000, keys: 2, stall: 0.25},
		{name: "worker processes", clients: 21, rate: 1000, duration: 300 * time.Millisecond, keys: 5, procs: 3},
		{name: "idle clients beside", clients: 5, rate: 200, duration: 300 * time.Millisecond, keys: 1, idle: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker, err := devbroker.Start(t.Context(), devbroker.Config{Addr: "127.0.0.1:0", Topic: "input"}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer broker.Close()
			wantRecords := int64(tt.rate * tt.duration.Seconds())
			stalled := 0
			for i := range tt.clients {
				if stalls(i, tt.stall) {
					stalled++
				}
			}
			readers := int64(tt.clients - stalled)
			srv, err := benchtest.Start(broker.Addr(), "input", int(readers))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			u := srv.URL()
			if tt.filter {
				u += "?key=" + KeyPlaceholder
			}

			res, err := Run(t.Context(), Config{
				URL:          u,
				Clients:      tt.clients,
				Brokers:      []string{broker.Addr()},
				Topic:        "input",
				Rate:         tt.rate,
				Duration:     tt.duration,
				Size:         tt.size,
				Keys:         tt.keys,
				PID:          os.Getpid(),
				Stall:        tt.stall,
				Procs:        tt.procs,
				Drain:        10 * time.Second,
				StallRead:    5 * time.Second,
				StallRcvBuf:  4096,
				Timeout:      time.Minute,
				Spawn:        spawnTestWorker,
				WorkerStderr: t.Output(),
				IdleClients:  tt.idle,
				IdleURL:      srv.URL() + "?key=nothing-is-produced-here",
			}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", b)
			var back map[string]any
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"clients", "connected", "connect_errors", "connect_seconds", "records_produced",
				"deliveries_expected", "deliveries_received", "loss", "deliveries_per_sec", "latency_ms",
				"server_rss_bytes", "rss_per_idle_conn_bytes", "server_cpu_seconds", "server_cpu_us_per_delivery",
				"stalled_clients", "stalled_closed", "duplicates", "out_of_order"} {
				if _, ok := back[f]; !ok {
					t.Errorf("output lacks %q", f)
				}
			}

			wantExpected := wantRecords * readers
			if tt.filter {
				wantExpected = 0
				for i := range tt.clients {
					wantExpected += (wantRecords + int64(tt.keys-1-i%tt.keys)) / int64(tt.keys)
				}
			}
			switch {
			case res.Connected != tt.clients || res.ConnectErrors != 0:
				t.Errorf("connected %d, errors %d", res.Connected, res.ConnectErrors)
			case res.IdleConnected != tt.idle:
				t.Errorf("idle clients connected %d, want %d", res.IdleConnected, tt.idle)
			case res.RecordsProduced != wantRecords || res.ProduceErrors != 0:
				t.Errorf("produced %d (errors %d), want %d", res.RecordsProduced, res.ProduceErrors, wantRecords)
			case res.DeliveriesExpected != wantExpected:
				t.Errorf("expected %d deliveries, want %d", res.DeliveriesExpected, wantExpected)
			case res.DeliveriesReceived != wantExpected || res.Loss != 0:
				t.Errorf("received %d of %d, loss %v", res.DeliveriesReceived, wantExpected, res.Loss)
			case res.Duplicates != 0 || res.OutOfOrder != 0 || res.Misrouted != 0 || res.Unparsed != 0 || res.Disconnected != 0:
				t.Errorf("anomalies in %s", b)
			case res.StalledClients != stalled || res.StalledClosed != stalled:
				t.Errorf("stalled %d, closed %d; want %d", res.StalledClients, res.StalledClosed, stalled)
			case res.LatencyMs.P50 <= 0 || res.LatencyMs.P50 > res.LatencyMs.P99 || res.LatencyMs.P99 > res.LatencyMs.Max:
				t.Errorf("latency %+v", res.LatencyMs)
			case res.ServerRSSBytes.Before <= 0 || res.ServerRSSBytes.Peak < res.ServerRSSBytes.Idle || res.ServerRSSBytes.Peak < res.ServerRSSBytes.Before:
				t.Errorf("rss %+v", res.ServerRSSBytes)
			}
			if srv.SlowClosed() != int64(stalled) {
				t.Errorf("server closed %d slow clients, want %d", srv.SlowClosed(), stalled)
			}
			// Every reading client answered the server's ping, before the
			// server broadcast anything, and no stalled one did.
			if got := srv.Pongs(); got != readers {
				t.Errorf("server got %d pongs, want %d", got, readers)
			}
		})
	}
}

func TestRunConfigErrors(t *testing.T) {
	good := Config{URL: "ws://127.0.0.1:1/ws", Clients: 1, Brokers: []string{"127.0.0.1:9092"}, Topic: "t", Rate: 1, Duration: time.Second}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no clients", func(c *Config) { c.Clients = 0 }},
		{"no rate", func(c *Config) { c.Rate = 0 }},
		{"no topic", func(c *Config) { c.Topic = "" }},
		{"no brokers", func(c *Config) { c.Brokers = nil }},
		{"bad stall", func(c *Config) { c.Stall = 2 }},
		{"http url", func(c *Config) { c.URL = "http://127.0.0.1:1/ws" }},
		{"remote url", func(c *Config) { c.URL = "ws://192.0.2.1:8000/ws" }},
		{"remote broker", func(c *Config) { c.Brokers = []string{"192.0.2.1:9092"} }},
		{"broker without port", func(c *Config) { c.Brokers = []string{"127.0.0.1"} }},
		{"procs without spawn", func(c *Config) { c.Clients, c.Procs = 4, 2 }},
		{"more procs than clients", func(c *Config) { c.Procs = 2 }},
		{"source ips with a name", func(c *Config) { c.URL, c.SourceIPs = "ws://localhost:1/ws", 4 }},
		{"too many source ips", func(c *Config) { c.SourceIPs = 300 }},
		{"beyond the open-file limit", func(c *Config) { c.Clients = 1 << 30 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			if _, err := cfg.withDefaults(t.Context()); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := good.withDefaults(t.Context()); err != nil {
		t.Errorf("good config refused: %v", err)
	}
	remote := good
	remote.URL, remote.AllowRemote = "ws://192.0.2.1:8000/ws", true
	if _, err := remote.withDefaults(t.Context()); err != nil {
		t.Errorf("remote url refused with AllowRemote: %v", err)
	}
}

func TestRunNobodyListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Run(t.Context(), Config{URL: "ws://" + addr + "/ws", Clients: 3, Brokers: []string{"127.0.0.1:9"}, Topic: "t",
		Rate: 1, Duration: time.Second, Timeout: 30 * time.Second}, testLogger(t))
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a connect failure", err)
	}
}

// TestGroupSourceIPsAndPacing connects through a server that records the
// clients' addresses: clients are spread over the source addresses, and
// the connect rate is a floor on the connect time.
func TestGroupSourceIPsAndPacing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ips := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ips <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			go func() {
				defer c.Close()
				if _, err := ws.Upgrade(c); err != nil {
					return
				}
				io.Copy(io.Discard, c)
			}()
		}
	}()
	g := NewGroup(GroupConfig{URL: "ws://" + ln.Addr().String() + "/", First: 10, Count: 6, SourceIPs: 3, ConnectRate: 100})
	res := g.Connect(t.Context())
	defer g.Stop()
	if res.Connected != 6 || res.Reading != 6 {
		t.Fatalf("connect result %+v", res)
	}
	// Six connections at 100/s: the last starts 50ms after the first.
	if res.ConnectSeconds < 0.05 {
		t.Errorf("connected in %.3fs, faster than the rate allows", res.ConnectSeconds)
	}
	seen := map[string]int{}
	for range 6 {
		seen[<-ips]++
	}
	// Clients 10..15 over 3 addresses: 127.0.0.(1 + i%3).
	want := map[string]int{"127.0.0.1": 2, "127.0.0.2": 2, "127.0.0.3": 2}
	for ip, n := range want {
		if seen[ip] != n {
			t.Errorf("source addresses %v, want %v", seen, want)
			break
		}
	}
}

// TestRunCutShort checks that the hard timeout ends a run that would go on
// for long, with partial figures and an error saying so.
func TestRunCutShort(t *testing.T) {
	broker, err := devbroker.Start(t.Context(), devbroker.Config{Addr: "127.0.0.1:0", Topic: "input"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	srv, err := benchtest.Start(broker.Addr(), "input", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	res, err := Run(t.Context(), Config{URL: srv.URL(), Clients: 2, Brokers: []string{broker.Addr()}, Topic: "input",
		Rate: 100, Duration: time.Hour, Timeout: time.Second}, testLogger(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if res.Connected != 2 || res.Clients != 2 {
		t.Errorf("partial result %+v", res)
	}
}
