// Command wsbench is the load tool for wsdest (or any WebSocket server that
// streams a Kafka topic): it connects many clients, produces timestamped
// records into Kafka, and prints one JSON line of results. Run wsbench -h
// for the flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsdest/wsdest/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

// usageError is a bad command line; the flag package has already printed
// the problem and the usage.
type usageError struct{ error }

const usageHead = `wsbench: load test for a WebSocket server that streams a Kafka topic.

It connects -clients WebSocket clients to -url, waits -idle, produces
records into -topic at -rate records/s for -duration, waits up to -drain
for the last deliveries, and prints ONE JSON line with the results to
stdout (progress goes to stderr). The run stops by itself within -timeout.

Each record value is {"ts":<send time, unix ns>,"seq":<n>,"pad":"xx.."},
keyed "k-<seq mod -keys>"; latency is receive time minus ts. A -url
containing {key} gives each client its own key (client i gets
k-<i mod -keys>), for servers that filter by key; deliveries are then
expected only for the client's key.

Only loopback hosts are accepted in -url and -brokers unless -allow-remote
is given.

Usage: wsbench [flags]

Flags:
`

const usageTail = `
Output fields: clients, connected, connect_errors, connect_seconds,
records_produced (acknowledged by Kafka), produce_errors,
deliveries_expected (records x reading clients), deliveries_received,
loss, deliveries_per_sec, latency_ms {p50,p90,p99,max}, server_pid,
server_rss_bytes {before,idle,peak}, rss_per_idle_conn_bytes
((idle-before)/connected), server_cpu_seconds (produce and drain),
server_cpu_us_per_delivery, stalled_clients, idle_connected, stalled_closed,
duplicates, out_of_order, disconnected, unparsed, misrouted,
produce_seconds, measure_seconds, server_cpu_us_per_record; with
-max-rate: max_rate, min_key_gap_ms (shortest time between two deliveries
of one key at one client), final_missing_keys (keys whose last record did
not reach every client); with -slow-readers: slow {readers, kept,
conflated, caught_up, final_missing_keys, staleness_ms {p50,p90,p99,max},
bytes}. Server figures need -pid (Linux /proc).
`

// parseFlags turns the command line into a bench configuration.
func parseFlags(args []string, stderr io.Writer) (bench.Config, error) {
	cfg, _, err := parseAllFlags(args, stderr)
	return cfg, err
}

// parseAllFlags is parseFlags with the resume mode's configuration, set
// (not nil) when -resume or -sse asks for that mode.
func parseAllFlags(args []string, stderr io.Writer) (bench.Config, *bench.ResumeConfig, error) {
	fs := flag.NewFlagSet("wsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg     bench.Config
		rcfg    bench.ResumeConfig
		brokers string
	)
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8000/ws", "WebSocket `URL` to connect to; may contain {key}")
	fs.IntVar(&cfg.Clients, "clients", 100, "number of WebSocket clients")
	fs.Float64Var(&cfg.ConnectRate, "connect-rate", 0, "connections per second; 0 = as fast as -in-flight allows")
	fs.IntVar(&cfg.InFlight, "in-flight", 200, "most handshakes in progress at once, per process")
	fs.StringVar(&brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap `servers`, comma separated")
	fs.StringVar(&cfg.Topic, "topic", "input", "Kafka `topic` to produce to")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "records per second to produce")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to produce")
	fs.IntVar(&cfg.Size, "size", 100, "record value size in `bytes` (padded; never below what ts and seq need)")
	fs.IntVar(&cfg.Keys, "keys", 1, "number of distinct record keys, k-0 .. k-<keys-1>")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id, for its memory (VmRSS) and CPU (utime+stime) from /proc; 0 = skip")
	fs.DurationVar(&cfg.Idle, "idle", 5*time.Second, "wait after connecting before measuring the idle memory")
	fs.Float64Var(&cfg.Stall, "stall", 0, "`fraction` of clients that connect but never read (isolation test)")
	fs.IntVar(&cfg.Procs, "procs", 1, "split the clients over this many child processes (one process may hold at most as many connections as its open-file limit)")
	fs.IntVar(&cfg.SourceIPs, "source-ips", 0, "spread clients over local addresses 127.0.0.1 .. 127.0.0.`N` (more connections than one address has ephemeral ports); 0 = off")
	fs.DurationVar(&cfg.Drain, "drain", 3*time.Second, "longest wait after producing for the last deliveries (ends early once all arrived)")
	fs.IntVar(&cfg.StallRcvBuf, "stall-rcvbuf", 0, "SO_RCVBUF `bytes` of the stalled clients' sockets (0 = kernel default, which lets a stalled client absorb megabytes on loopback)")
	fs.DurationVar(&cfg.StallRead, "stall-read", 2*time.Second, "how long stalled clients read at the end to learn whether the server closed them")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "hard bound on the whole run; 0 = the phases' sum plus two minutes")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow non-loopback hosts in -url and -brokers")
	fs.StringVar(&cfg.TLSCAFile, "tls-ca", "", "PEM `file` of the CA that signed the server's certificate, for a wss:// -url (default: the system roots)")
	fs.BoolVar(&cfg.Deflate, "deflate", false, "clients offer permessage-deflate (for a server with COMPRESSION=true) and inflate what they get")
	fs.IntVar(&cfg.Filters, "filters", 0, "give the clients views: this many distinct ?where= filters (each true of every record), client i the filter i mod `F`; the records are then telemetry readings")
	fs.IntVar(&cfg.Projections, "projections", 0, "give the clients views: this many distinct ?fields= lists (each keeping ts and seq), client i the list (i / filters) mod `P`")
	fs.IntVar(&cfg.IdleClients, "idle-clients", 0, "also hold this many connections that never read, on -idle-url, for the whole run (idle load; not in the figures)")
	fs.StringVar(&cfg.IdleURL, "idle-url", "", "WebSocket `URL` of the idle clients; default -url with path /ws/wsbench-idle")
	fs.Float64Var(&cfg.MaxRate, "max-rate", 0, "add max_rate=`N` to -url (at most N messages per key per second, latest wins): reports min_key_gap_ms and final_missing_keys instead of a meaningful loss; compare server_cpu_us_per_record; give -drain more than 1/N s, for the last records to arrive")
	fs.IntVar(&cfg.SlowReaders, "slow-readers", 0, "also connect this many clients (envelope shape) that read at most -slow-read-bytes a second through a receive buffer of -stall-rcvbuf (default 4096): for SLOW_CLIENTS=conflate, reports slow.kept, slow.conflated, slow.caught_up and slow.staleness_ms (each key's last record, from production to arrival)")
	fs.IntVar(&cfg.SlowReadBytes, "slow-read-bytes", 10000, "read rate of each slow reader, `bytes` per second")
	fs.IntVar(&rcfg.Resume, "resume", 0, "resume mode: this many of the clients drop at once and reconnect with their last cursor (envelope shape, from=/Last-Event-ID); see -resume-after, -away, -sse")
	fs.DurationVar(&rcfg.DropAfter, "resume-after", 0, "resume mode: when the clients drop, after producing starts; 0 = a third of -duration")
	fs.DurationVar(&rcfg.Away, "away", time.Second, "resume mode: how long the dropped clients stay away")
	fs.BoolVar(&rcfg.Snapshot, "snapshot", false, "resume mode: the dropped clients come back with snapshot=true (the latest record of each of -keys keys, then live) instead of their cursor")
	fs.BoolVar(&rcfg.SSE, "sse", false, "resume mode with Server-Sent Events clients (GET /sse with Last-Event-ID) instead of WebSocket; with -resume 0, a plain SSE load run")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), usageTail)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, nil, err
		}
		return cfg, nil, usageError{err}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %q\n", fs.Args())
		fs.Usage()
		return cfg, nil, usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if err := bench.CheckCAFile(cfg.TLSCAFile); err != nil {
		fmt.Fprintf(stderr, "-tls-ca: %v\n", err)
		return cfg, nil, usageError{err}
	}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Brokers = append(cfg.Brokers, b)
		}
	}
	if rcfg.Resume == 0 && !rcfg.SSE {
		return cfg, nil, nil
	}
	rcfg.URL, rcfg.Clients, rcfg.Brokers, rcfg.Topic = cfg.URL, cfg.Clients, cfg.Brokers, cfg.Topic
	rcfg.Rate, rcfg.Duration, rcfg.Size, rcfg.PID, rcfg.Keys = cfg.Rate, cfg.Duration, cfg.Size, cfg.PID, cfg.Keys
	rcfg.InFlight, rcfg.AllowRemote = cfg.InFlight, cfg.AllowRemote
	if cfg.Drain > 0 {
		rcfg.Drain = cfg.Drain
	}
	return cfg, &rcfg, nil
}

// run is the whole program: flags in, one JSON line out. With the hidden
// worker flag first it is one worker process of a split run instead.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 2 && args[0] == bench.WorkerFlag {
		return bench.ServeWorker(ctx, args[1], stdin, stdout)
	}
	cfg, rcfg, err := parseAllFlags(args, stderr)
	if err != nil {
		return err
	}
	if rcfg != nil {
		return runResume(ctx, *rcfg, stdout, stderr)
	}
	cfg.WorkerStderr = stderr
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cfg.Spawn = func(ctx context.Context, args []string) *exec.Cmd {
		return exec.CommandContext(ctx, exe, args...)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	res, runErr := bench.Run(ctx, cfg, logger)
	if runErr != nil && !errors.Is(runErr, context.Canceled) && !errors.Is(runErr, context.DeadlineExceeded) {
		return runErr
	}
	// A run cut short by a signal or -timeout still reports what it saw;
	// the error (and exit status) says the figures are partial.
	if runErr == nil || res.Connected > 0 {
		line, err := json.Marshal(res)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	}
	return runErr
}

// runResume runs the resume mode and prints its JSON line.
func runResume(ctx context.Context, cfg bench.ResumeConfig, stdout, stderr io.Writer) error {
	res, err := bench.RunResume(ctx, cfg, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil && res.Connected == 0 {
		return err
	}
	line, jerr := json.Marshal(res)
	if jerr != nil {
		return fmt.Errorf("encode result: %w", jerr)
	}
	if _, werr := fmt.Fprintf(stdout, "%s\n", line); werr != nil {
		return fmt.Errorf("write result: %w", werr)
	}
	return err
}
