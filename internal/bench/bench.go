// Package bench is the core of wsbench, the load tool: it connects many
// WebSocket clients to a server, produces timestamped records into Kafka at a
// steady rate, and measures what the clients receive (counts, loss, order,
// latency) and what the server process costs (memory, CPU).
//
// The client side is built to stay cheap per delivery so that it does not
// become the bottleneck on a small machine: one goroutine per client, many
// frames per read syscall, frames parsed in place, the timestamp and
// sequence number found by scanning bytes, and latencies recorded in a
// fixed per-client histogram; nothing allocates per frame.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config configures a run. Zero fields take the defaults stated on them.
type Config struct {
	// URL is the WebSocket URL to connect to (ws:// or wss://). It may hold
	// KeyPlaceholder; see there.
	URL string
	// Clients is the number of connections; required.
	Clients int
	// ConnectRate is connections per second overall; 0 connects as fast as
	// InFlight allows.
	ConnectRate float64
	// InFlight bounds concurrent handshakes per process; default 200.
	InFlight int
	// Brokers are the Kafka bootstrap servers; required.
	Brokers []string
	// Topic is the topic to produce to; required.
	Topic string
	// Rate is records per second; Duration how long to produce. Both are
	// required.
	Rate     float64
	Duration time.Duration
	// Size is each record value's length in bytes (padded); values are
	// never shorter than their ts and seq fields need.
	Size int
	// Keys is the number of distinct record keys ("k-0" .. "k-<Keys-1>",
	// round robin); default 1.
	Keys int
	// PID is the server's process id, for its memory and CPU figures
	// (Linux /proc); 0 skips them.
	PID int
	// Idle is how long to wait after connecting before measuring the idle
	// memory; default 0 here (the wsbench flag defaults to 5s).
	Idle time.Duration
	// Stall is the fraction of clients that connect but never read.
	Stall float64
	// Procs splits the clients over this many worker processes; default 1
	// (all in this process). Above 1, Spawn is required.
	Procs int
	// SourceIPs, when above 0, spreads the clients over the local addresses
	// 127.0.0.1 .. 127.0.0.<SourceIPs> (at most 254) for more connections
	// than one address has ephemeral ports.
	SourceIPs int
	// Drain is the longest wait, after producing, for the last deliveries;
	// the run moves on earlier once every expected delivery arrived.
	// Default 3s.
	Drain time.Duration
	// StallRead bounds the final read of the stalled clients; default 2s.
	StallRead time.Duration
	// StallRcvBuf, when above 0, is SO_RCVBUF for the stalled clients.
	StallRcvBuf int
	// TLSCAFile is a PEM file of the CA that signed a wss:// server's
	// certificate; "" = the system roots (see tls.go).
	TLSCAFile string
	// Timeout is a hard bound on the whole run; default: the sum of the
	// phases plus a minute.
	Timeout time.Duration
	// AllowRemote permits non-loopback hosts in URL and Brokers.
	AllowRemote bool
	// IdleClients, when above 0, opens that many more connections to
	// IdleURL before the measured clients connect, and holds them, never
	// reading, for the whole run: idle load, such as clients of a key that
	// never receives anything. They are not counted in the figures (but
	// they are in the server's memory and CPU).
	IdleClients int
	// Deflate makes the measured clients offer permessage-deflate and
	// inflate what they receive compressed.
	Deflate bool
	// IdleURL is where the idle clients connect; default URL with the
	// path /ws/wsbench-idle (a key nothing is produced to).
	IdleURL string
	// Filters and Projections, when above 0, give each measured client a
	// view: one of Filters distinct ?where= filters (each true of every
	// record) and one of Projections distinct ?fields= lists; the records
	// are then telemetry readings (AppendTelemetry) for them to read.
	Filters, Projections int
	// MaxRate, when above 0, adds max_rate=MaxRate to URL: the clients get
	// each key at most MaxRate times a second, latest wins, so Loss means
	// nothing; the run reports instead the shortest time between two
	// deliveries of one key (MinKeyGapMs) and the keys whose last record
	// did not reach every client (FinalMissingKeys).
	MaxRate float64
	// SlowReaders, when above 0, adds that many clients of URL (with the
	// envelope, for the notices) in this process that read at most
	// SlowReadBytes bytes a second through a receive buffer of
	// StallRcvBuf bytes (default 4 KiB): against SLOW_CLIENTS=conflate,
	// whether they are kept, and how old each key's last record is when
	// it reaches them (Result.Slow). Not in the other figures.
	SlowReaders   int
	SlowReadBytes int
	// Spawn returns a command that runs ServeWorker with args (the
	// wsbench binary re-executing itself). Required when Procs > 1.
	Spawn func(ctx context.Context, args []string) *exec.Cmd
	// WorkerStderr receives the workers' logs; nil discards them.
	WorkerStderr io.Writer
}

// Latency holds latency percentiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// RSS holds the server's resident memory in bytes: before the clients
// connected, after the idle wait, and the highest sampled.
type RSS struct {
	Before int64 `json:"before"`
	Idle   int64 `json:"idle"`
	Peak   int64 `json:"peak"`
}

// Result is the outcome of a run, printed by wsbench as one JSON line.
// Server figures are zero when no PID was given.
type Result struct {
	Clients        int     `json:"clients"`
	Connected      int     `json:"connected"`
	ConnectErrors  int     `json:"connect_errors"`
	ConnectSeconds float64 `json:"connect_seconds"`
	// RecordsProduced counts records the broker acknowledged.
	RecordsProduced int64 `json:"records_produced"`
	ProduceErrors   int64 `json:"produce_errors"`
	// DeliveriesExpected is RecordsProduced times the connected reading
	// clients (or, with a key filter, the sum over keys of records times
	// the readers of that key).
	DeliveriesExpected int64 `json:"deliveries_expected"`
	DeliveriesReceived int64 `json:"deliveries_received"`
	// Loss is the fraction of expected deliveries that never arrived
	// (duplicates and misrouted deliveries do not make up for lost ones).
	Loss             float64 `json:"loss"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	LatencyMs        Latency `json:"latency_ms"`
	ServerPID        int     `json:"server_pid"`
	ServerRSSBytes   RSS     `json:"server_rss_bytes"`
	// RSSPerIdleConnBytes is (idle - before) / connected.
	RSSPerIdleConnBytes float64 `json:"rss_per_idle_conn_bytes"`
	// ServerCPUSeconds is the server's CPU time during produce and drain.
	ServerCPUSeconds       float64 `json:"server_cpu_seconds"`
	ServerCPUUsPerDelivery float64 `json:"server_cpu_us_per_delivery"`
	StalledClients         int     `json:"stalled_clients"`
	IdleConnected          int     `json:"idle_connected,omitempty"`
	StalledClosed          int     `json:"stalled_closed"`
	Duplicates             int64   `json:"duplicates"`
	OutOfOrder             int64   `json:"out_of_order"`
	Disconnected           int     `json:"disconnected"`
	Unparsed               int64   `json:"unparsed"`
	Misrouted              int64   `json:"misrouted"`
	ProduceSeconds         float64 `json:"produce_seconds"`
	// MeasureSeconds is the produce and drain window the rates use.
	MeasureSeconds float64 `json:"measure_seconds"`
	// ServerCPUUsPerRecord is the server's CPU time per record produced:
	// the figure to compare between runs that deliver differently many
	// messages (max_rate).
	ServerCPUUsPerRecord float64 `json:"server_cpu_us_per_record"`
	// With Config.MaxRate: the rate asked for, the shortest time between
	// two deliveries of one key at one client, and the keys whose last
	// record did not reach every reading client.
	MaxRate          float64 `json:"max_rate,omitempty"`
	MinKeyGapMs      float64 `json:"min_key_gap_ms,omitempty"`
	FinalMissingKeys int     `json:"final_missing_keys"`
	// Slow is what the slow readers saw (Config.SlowReaders).
	Slow *SlowResult `json:"slow,omitempty"`
}

func (cfg Config) withDefaults(ctx context.Context) (Config, error) {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 200
	}
	if cfg.Keys <= 0 {
		cfg.Keys = 1
	}
	if cfg.Procs <= 0 {
		cfg.Procs = 1
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 3 * time.Second
	}
	if cfg.StallRead <= 0 {
		cfg.StallRead = 2 * time.Second
	}
	switch {
	case cfg.Clients <= 0:
		return cfg, errors.New("bench: clients must be above 0")
	case cfg.Rate <= 0 || cfg.Duration <= 0:
		return cfg, errors.New("bench: rate and duration must be above 0")
	case cfg.Topic == "":
		return cfg, errors.New("bench: no topic")
	case len(cfg.Brokers) == 0:
		return cfg, errors.New("bench: no brokers")
	case cfg.Stall < 0 || cfg.Stall > 1:
		return cfg, errors.New("bench: stall must be a fraction from 0 to 1")
	case cfg.SourceIPs < 0 || cfg.SourceIPs > 254:
		return cfg, errors.New("bench: source IPs must be from 0 to 254")
	case cfg.Procs > cfg.Clients:
		return cfg, errors.New("bench: more processes than clients")
	case cfg.Procs > 1 && cfg.Spawn == nil:
		return cfg, errors.New("bench: several processes need a way to spawn workers")
	}
	u, err := url.Parse(strings.ReplaceAll(cfg.URL, KeyPlaceholder, "k-0"))
	if err != nil {
		return cfg, fmt.Errorf("bench: url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return cfg, fmt.Errorf("bench: url %q: scheme must be ws or wss", cfg.URL)
	}
	if !cfg.AllowRemote {
		if err := checkLoopback(ctx, u.Hostname()); err != nil {
			return cfg, fmt.Errorf("bench: url: %w", err)
		}
		for _, b := range cfg.Brokers {
			host, _, err := net.SplitHostPort(b)
			if err != nil {
				return cfg, fmt.Errorf("bench: broker %q: %w", b, err)
			}
			if err := checkLoopback(ctx, host); err != nil {
				return cfg, fmt.Errorf("bench: broker: %w", err)
			}
		}
	}
	if cfg.SourceIPs > 0 {
		if ip := net.ParseIP(u.Hostname()); ip == nil || ip.To4() == nil {
			return cfg, errors.New("bench: source IPs need an IPv4 address in the url")
		}
	}
	if cfg.IdleClients < 0 {
		return cfg, errors.New("bench: idle clients must be 0 or more")
	}
	if cfg.MaxRate > 0 {
		if cfg.URL, err = withQuery(cfg.URL, "max_rate", strconv.FormatFloat(cfg.MaxRate, 'g', -1, 64)); err != nil {
			return cfg, fmt.Errorf("bench: url: %w", err)
		}
	}
	if cfg.SlowReaders < 0 || cfg.SlowReaders > 0 && cfg.SlowReadBytes <= 0 {
		return cfg, errors.New("bench: slow readers need a read rate above 0")
	}
	if cfg.IdleClients > 0 && cfg.IdleURL == "" {
		u.Path, u.RawQuery = "/ws/wsbench-idle", ""
		cfg.IdleURL = u.String()
	}
	if err := checkOpenFiles(cfg.Clients+cfg.IdleClients*cfg.Procs, cfg.Procs); err != nil {
		return cfg, err
	}
	if cfg.Timeout <= 0 {
		connect := time.Minute
		if cfg.ConnectRate > 0 {
			connect += time.Duration(float64(cfg.Clients) / cfg.ConnectRate * float64(time.Second))
		}
		cfg.Timeout = connect + cfg.Idle + cfg.Duration + 2*cfg.Drain + cfg.StallRead + time.Minute
	}
	return cfg, nil
}

// checkLoopback refuses hosts that are not this machine, so a load test
// cannot be pointed at someone else's server by mistake.
func checkLoopback(ctx context.Context, host string) error {
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%s is not a loopback address (pass -allow-remote to permit it)", host)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, not a loopback address (pass -allow-remote to permit it)", host, a.IP)
		}
	}
	return nil
}

// checkOpenFiles fails early when a process would run out of descriptors
// half way through connecting.
func checkOpenFiles(clients, procs int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil
	}
	per := (clients + procs - 1) / procs
	const spare = 64 // the producer, pipes, stdio
	if uint64(per+spare) > lim.Cur {
		need := (clients + int(lim.Cur) - spare - 1) / (int(lim.Cur) - spare)
		return fmt.Errorf("bench: %d clients per process exceed the open-file limit of %d; use -procs %d or more, or raise the limit", per, lim.Cur, need)
	}
	return nil
}

// Run performs one benchmark run: connect, idle, produce, drain, collect.
// It returns when the run is over, by itself within cfg.Timeout. logger gets
// the progress. When ctx ends or the timeout passes during the produce or
// drain phase, the run still collects what the clients received and returns
// those partial figures with an error wrapping the context's error.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (Result, error) {
	cfg, err := cfg.withDefaults(ctx)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	res := Result{Clients: cfg.Clients, ServerPID: cfg.PID}
	var server procStats
	var sampler *peakSampler
	if cfg.PID > 0 {
		server = procStats{cfg.PID}
		if res.ServerRSSBytes.Before, err = server.rss(); err != nil {
			return res, err
		}
		sampler = startPeakSampler(ctx, server, 100*time.Millisecond, res.ServerRSSBytes.Before)
		defer sampler.Peak()
	}
	if cfg.SourceIPs == 0 && cfg.Clients > 28000 {
		logger.Warn("more clients than one source address has ephemeral ports; consider -source-ips", "clients", cfg.Clients)
	}

	if cfg.IdleClients > 0 {
		idle := NewGroup(GroupConfig{URL: cfg.IdleURL, Count: cfg.IdleClients, Keys: 1, Stall: 1,
			InFlight: cfg.InFlight, SourceIPs: cfg.SourceIPs, StallRcvBuf: cfg.StallRcvBuf})
		defer idle.Abort()
		logger.Info("connecting idle clients", "clients", cfg.IdleClients, "url", cfg.IdleURL)
		r := idle.Connect(ctx)
		res.IdleConnected = r.Connected
		if r.Connected < cfg.IdleClients {
			logger.Warn("not every idle client connected", "connected", r.Connected, "first_error", r.FirstConnectError)
		}
	}
	sets, err := startSets(ctx, cfg)
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			for _, s := range sets {
				s.kill()
			}
		}
	}()

	// Connect.
	logger.Info("connecting", "clients", cfg.Clients, "procs", cfg.Procs, "url", cfg.URL)
	conn, err := connectAll(ctx, sets)
	if err != nil {
		return res, err
	}
	res.Connected, res.ConnectErrors, res.ConnectSeconds = conn.Connected, conn.ConnectErrors, conn.ConnectSeconds
	res.StalledClients = conn.Stalled
	logger.Info("connected", "connected", conn.Connected, "errors", conn.ConnectErrors,
		"seconds", round(conn.ConnectSeconds, 3), "first_error", conn.FirstConnectError)
	if conn.Connected == 0 {
		return res, fmt.Errorf("bench: no client connected: %s", conn.FirstConnectError)
	}

	// Idle.
	if cfg.Idle > 0 {
		logger.Info("idle", "wait", cfg.Idle.String())
		if err := sleep(ctx, cfg.Idle); err != nil {
			return res, fmt.Errorf("bench: idle: %w", err)
		}
	}
	var cpu0 time.Duration
	if cfg.PID > 0 {
		if res.ServerRSSBytes.Idle, err = server.rss(); err != nil {
			return res, err
		}
		res.RSSPerIdleConnBytes = math.Round(float64(res.ServerRSSBytes.Idle-res.ServerRSSBytes.Before) / float64(conn.Connected))
		if cpu0, err = server.cpu(); err != nil {
			return res, err
		}
	}

	// Produce.
	prod, err := newProducer(cfg.Brokers, cfg.Topic, cfg.Rate, cfg.Duration, cfg.Size, cfg.Keys)
	if err != nil {
		return res, err
	}
	if cfg.Filters > 0 || cfg.Projections > 0 {
		prod.value = AppendTelemetry
	}
	defer prod.close()
	slowDone, stopSlow, err := startSlow(ctx, cfg, prod, logger)
	if err != nil {
		return res, err
	}
	defer stopSlow()
	received := func() int64 {
		var n int64
		for _, s := range sets {
			n += s.received()
		}
		return n
	}
	logger.Info("producing", "rate", cfg.Rate, "duration", cfg.Duration.String(), "size", cfg.Size, "keys", cfg.Keys, "topic", cfg.Topic)
	start := time.Now()
	progCtx, stopProgress := context.WithCancel(ctx)
	progDone := make(chan struct{})
	go func() {
		defer close(progDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-progCtx.Done():
				return
			case <-t.C:
				logger.Info("progress", "produced", prod.produced(), "sent", prod.sent.Load(),
					"received", received(), "expected", prod.expected(conn.Reading, conn.ReadingByKey))
			}
		}
	}()
	prod.run(ctx)
	res.ProduceSeconds = time.Since(start).Seconds()

	// Drain: wait for the broker's acknowledgements, then for the
	// deliveries they owe, both within cfg.Drain.
	drainCtx, drainCancel := context.WithTimeout(ctx, cfg.Drain)
	if err := prod.flush(drainCtx); err != nil {
		logger.Warn("producer did not flush in time; unacknowledged records are not counted", "err", err)
	}
	waitDeliveries(drainCtx, func() bool {
		return received() >= prod.expected(conn.Reading, conn.ReadingByKey)
	})
	drainCancel()
	end := time.Now()
	stopProgress()
	<-progDone
	stopSlow()
	res.MeasureSeconds = end.Sub(start).Seconds()
	if cfg.PID > 0 {
		cpu1, err := server.cpu()
		if err != nil {
			return res, err
		}
		res.ServerCPUSeconds = (cpu1 - cpu0).Seconds()
	}
	prod.close()
	res.RecordsProduced = prod.produced()
	res.ProduceErrors = prod.failed.Load()
	if e := prod.firstError(); e != "" {
		logger.Warn("produce errors", "count", res.ProduceErrors, "first", e)
	}

	// Collect.
	stopped = true
	total, err := stopAll(ctx, sets)
	if err != nil {
		return res, err
	}
	if sampler != nil {
		// The sampler may have missed the idle reading's moment.
		res.ServerRSSBytes.Peak = max(sampler.Peak(), res.ServerRSSBytes.Idle)
	}
	fill(&res, &total, prod.expected(total.Reading, total.ReadingByKey))
	if res.RecordsProduced > 0 {
		res.ServerCPUUsPerRecord = round(res.ServerCPUSeconds*1e6/float64(res.RecordsProduced), 3)
	}
	if cfg.MaxRate > 0 {
		res.MaxRate = cfg.MaxRate
		res.MinKeyGapMs = round(float64(total.MinKeyGapNs)/1e6, 3)
		res.FinalMissingKeys = missingKeys(total.LastSeqMin, finalSeqs(prod.sent.Load(), cfg.Keys))
	}
	if slowDone != nil {
		s := <-slowDone
		res.Slow = &s
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench: run cut short, figures are partial: %w", err)
	}
	logger.Info("done", "received", res.DeliveriesReceived, "expected", res.DeliveriesExpected, "loss", res.Loss)
	return res, nil
}

func fill(res *Result, t *GroupResult, expected int64) {
	res.DeliveriesExpected = expected
	res.DeliveriesReceived = t.Received
	res.Duplicates = t.Duplicates
	res.OutOfOrder = t.OutOfOrder
	res.Disconnected = t.Disconnected
	res.Unparsed = t.Unparsed
	res.Misrouted = t.Misrouted
	res.StalledClients = t.Stalled
	res.StalledClosed = t.StalledClosed
	if expected > 0 {
		good := t.Received - t.Duplicates - t.Misrouted
		res.Loss = round(max(0, float64(expected-good)/float64(expected)), 6)
	}
	if res.MeasureSeconds > 0 {
		res.DeliveriesPerSec = round(float64(t.Received)/res.MeasureSeconds, 1)
	}
	if t.Received > 0 {
		res.ServerCPUUsPerDelivery = round(res.ServerCPUSeconds*1e6/float64(t.Received), 3)
	}
	ms := func(ns int64) float64 { return round(float64(ns)/1e6, 3) }
	res.LatencyMs = Latency{
		P50: ms(t.Latency.Quantile(0.50)),
		P90: ms(t.Latency.Quantile(0.90)),
		P99: ms(t.Latency.Quantile(0.99)),
		Max: ms(t.Latency.Max()),
	}
	res.ConnectSeconds = round(res.ConnectSeconds, 3)
	res.ServerCPUSeconds = round(res.ServerCPUSeconds, 3)
	res.ProduceSeconds = round(res.ProduceSeconds, 3)
	res.MeasureSeconds = round(res.MeasureSeconds, 3)
}

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

func startSets(ctx context.Context, cfg Config) ([]clientSet, error) {
	deadline, _ := ctx.Deadline()
	sets := make([]clientSet, 0, cfg.Procs)
	for i := range cfg.Procs {
		first := cfg.Clients * i / cfg.Procs
		gc := GroupConfig{
			URL:         cfg.URL,
			First:       first,
			Count:       cfg.Clients*(i+1)/cfg.Procs - first,
			Keys:        cfg.Keys,
			Stall:       cfg.Stall,
			ConnectRate: cfg.ConnectRate / float64(cfg.Procs),
			InFlight:    cfg.InFlight,
			SourceIPs:   cfg.SourceIPs,
			StallRead:   cfg.StallRead,
			StallRcvBuf: cfg.StallRcvBuf,
			TLSCAFile:   cfg.TLSCAFile,
			Deflate:     cfg.Deflate,
			Filters:     cfg.Filters,
			Projections: cfg.Projections,
			LatestWins:  cfg.MaxRate > 0,
		}
		if cfg.Procs == 1 {
			sets = append(sets, localSet{NewGroup(gc)})
			break
		}
		stderr := cfg.WorkerStderr
		if stderr == nil {
			stderr = io.Discard
		}
		r, err := startRemote(ctx, cfg.Spawn, workerArgs{Group: gc, Deadline: deadline}, stderr)
		if err != nil {
			for _, s := range sets {
				s.kill()
			}
			return nil, err
		}
		sets = append(sets, r)
	}
	return sets, nil
}

func connectAll(ctx context.Context, sets []clientSet) (GroupResult, error) {
	return onAll(ctx, sets, clientSet.connect)
}

func stopAll(ctx context.Context, sets []clientSet) (GroupResult, error) {
	return onAll(ctx, sets, clientSet.stop)
}

// onAll runs step on every set at once and merges the results; the error
// joins every set's error.
func onAll(ctx context.Context, sets []clientSet, step func(clientSet, context.Context) (GroupResult, error)) (GroupResult, error) {
	type out struct {
		res GroupResult
		err error
	}
	ch := make(chan out, len(sets))
	for _, s := range sets {
		go func() {
			r, err := step(s, ctx)
			ch <- out{r, err}
		}()
	}
	var total GroupResult
	var errs []error
	for range sets {
		o := <-ch
		errs = append(errs, o.err)
		total.merge(&o.res)
	}
	return total, errors.Join(errs...)
}

// waitDeliveries polls done until it holds or ctx ends.
func waitDeliveries(ctx context.Context, done func() bool) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
