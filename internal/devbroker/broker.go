// Package devbroker runs an in-memory Kafka broker inside the process, for
// local development without a real Kafka, and optionally feeds it demo data
// so that a freshly started service has something to stream.
//
// The broker is franz-go's kfake: it speaks the Kafka wire protocol over TCP,
// so any Kafka client (franz-go, librdkafka tools such as kcat, Quix Streams)
// can produce into it and consume from it. Everything lives in memory and is
// lost when the process exits.
package devbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults applied by Start to zero Config fields.
const (
	DefaultAddr         = "127.0.0.1:9092"
	DefaultDemoInterval = 250 * time.Millisecond
	// Partitions is the partition count of the seeded topic and of topics
	// created automatically when a client first uses them.
	Partitions = 3
)

// Config configures Start. The zero value of every field but Topic means its
// default.
type Config struct {
	// Addr is the TCP address to listen on; default "127.0.0.1:9092". Port 0
	// picks a free port (see Broker.Addr). When the host is unspecified
	// ("0.0.0.0:9092", ":9092") the broker listens on every interface but
	// advertises 127.0.0.1, since Kafka clients connect to the advertised
	// address after bootstrapping.
	Addr string
	// Topic is created at start with Partitions partitions. Required.
	Topic string
	// Demo turns on the demo producer: simulated sensor readings written to
	// Topic every DemoInterval.
	Demo bool
	// DemoInterval is the time between demo rounds; default 250ms.
	DemoInterval time.Duration
	// DemoSeed seeds the demo data's random walk, so runs are repeatable.
	DemoSeed uint64
}

// Broker is a running development broker. Its methods are safe for
// concurrent use.
type Broker struct {
	addr    string
	cluster *kfake.Cluster

	cancel    context.CancelFunc // stops the demo producer
	done      chan struct{}      // closed when the demo producer has exited
	closeOnce sync.Once
}

// Start listens on cfg.Addr, starts the broker and, when cfg.Demo is set,
// the demo producer. It returns as soon as the broker accepts connections; a
// bind error is returned at once. The demo producer runs until ctx is done or
// Close is called; ctx does not stop the broker itself, only Close does.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Broker, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.DemoInterval <= 0 {
		cfg.DemoInterval = DefaultDemoInterval
	}
	if cfg.Topic == "" {
		return nil, errors.New("dev broker: no topic to create")
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dev broker: listen %s: %w (set DEV_BROKER_ADDR, or point Quix__Broker__Address at your Kafka)",
			cfg.Addr, listenCause(err))
	}
	adv := advertised(ln)
	handed := false
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		// kfake would listen on 127.0.0.1 itself; handing it our listener
		// keeps the bind (and its error) here and honours the chosen host.
		kfake.ListenFn(func(string, string) (net.Listener, error) {
			if handed {
				return nil, errors.New("dev broker: listener already in use")
			}
			handed = true
			return adv, nil
		}),
		kfake.SeedTopics(Partitions, cfg.Topic),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(Partitions),
		kfake.WithLogger(kfakeLogger{logger}),
	)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("dev broker: start: %w", err)
	}

	b := &Broker{
		addr:    adv.Addr().String(),
		cluster: cluster,
		done:    make(chan struct{}),
	}
	logStart(logger, b.addr, cfg)

	if !cfg.Demo {
		b.cancel = func() {}
		close(b.done)
		return b, nil
	}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(b.addr),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(10*time.Second),
	)
	if err != nil {
		cluster.Close()
		return nil, fmt.Errorf("dev broker: demo producer: %w", err)
	}
	pctx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	go func() {
		defer close(b.done)
		defer client.Close()
		runDemo(pctx, client, newDemo(cfg.DemoSeed), cfg.DemoInterval, logger)
	}()
	return b, nil
}

// Addr returns the host:port Kafka clients should bootstrap from.
func (b *Broker) Addr() string { return b.addr }

// Close stops the demo producer, waits for it to exit, then shuts the broker
// down, dropping all data. Connections of other clients are closed by the
// broker shortly after Close returns. Close is idempotent.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.cancel()
		<-b.done
		b.cluster.Close()
	})
}

// logStart says, once, what runs: one warning (this is not a real broker)
// and one line on how to use it.
func logStart(logger *slog.Logger, addr string, cfg Config) {
	logger.Warn("development Kafka broker running: in memory only, all data is lost on exit; for a real broker set Quix__Broker__Address=host:port",
		"addr", addr, "topic", cfg.Topic, "partitions", Partitions)
	attrs := []any{"example", "kcat -P -b " + addr + " -t " + cfg.Topic + " -k my-key"}
	if cfg.Demo {
		attrs = append(attrs, "demo_sensors", numSensors, "demo_interval", cfg.DemoInterval.String(), "demo_off", "DEMO_DATA=false")
	}
	logger.Info("dev broker: produce into it with any Kafka client", attrs...)
}

// listenCause strips net.Listen's "listen tcp <addr>: bind:" prefix, which
// would repeat what the caller's message already says.
func listenCause(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		err = opErr.Err
	}
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		err = sysErr.Err
	}
	return err
}

// advertisedListener reports a connectable address from Addr, which kfake
// puts in its metadata responses as the broker's host and port.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

func advertised(ln net.Listener) net.Listener {
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return ln
	}
	return advertisedListener{ln, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ta.Port}}
}

// kfakeLogger forwards kfake's logs to slog. kfake reports routine events
// (a client disconnecting, a failed request) as warnings, so only its errors
// keep their level.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	lvl := slog.LevelDebug
	if level == kfake.LogLevelError {
		lvl = slog.LevelError
	}
	if !k.l.Enabled(context.Background(), lvl) {
		return
	}
	k.l.Log(context.Background(), lvl, "dev broker: "+fmt.Sprintf(format, args...))
}
