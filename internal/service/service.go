// Package service assembles wsdest from its parts: the Kafka source (or the
// embedded development broker), the encoder and the history (with its
// Kafka catch-up reader), the hub, the poller that reads every client
// connection, the HTTP server and the metrics, and runs them until its
// context ends.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/auth"
	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/devbroker"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/history"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/kafka"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/metrics"
	"github.com/wsdest/wsdest/internal/netpoll"
	"github.com/wsdest/wsdest/internal/ready"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/snapshot"
	"github.com/wsdest/wsdest/internal/view"
)

// Service is a configured, listening wsdest. Create it with New, then call
// Run once.
type Service struct {
	cfg    config.Config
	log    *slog.Logger
	ln     net.Listener
	dev    *devbroker.Broker // nil unless the dev broker is used
	source *kafka.Source
	hub    *hub.Hub
	poller *netpoll.Poller
	enc    *encode.Encoder
	http   *http.Server

	pprofLn   net.Listener // nil unless PPROF_ADDR is set
	pprofHTTP *http.Server

	srv   *server.Server
	auth  *auth.Authenticator  // nil without auth
	certs *server.Certificates // nil without TLS_CERT_FILE
	guard *server.ConnGuard

	metrics     *metrics.Metrics
	metricsLn   net.Listener // nil unless METRICS_ADDR is set
	metricsHTTP *http.Server

	// Resumable streams (history.go).
	store   *history.Store // nil with HISTORY_BYTES=0
	reader  *history.Reader
	tap     *history.Tap
	resumer *history.Resumer
	views   *view.Registry // the clients' views (views.go)
	// table is the latest message per key (snapshot.go); nil with
	// SNAPSHOT=false.
	table *snapshot.Table
	// seedEnc encodes what seeding reads (its own counters).
	seedEnc *encode.Encoder
}

// StartError is returned by New when the service cannot start because of
// its settings or its environment (a bad value, a port in use, an
// unreachable Quix Portal API). Its message is one line for the operator.
type StartError struct{ Err error }

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// New binds the HTTP listener, starts the development broker if the
// configuration asks for it and resolves the Kafka connection, so that
// every start-up failure is reported here as a *StartError. Each part is
// built by one function below, in the order of their dependencies.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *Service, err error) {
	// s is not the named result: the error returns set that to nil, and
	// the deferred cleanup needs the parts created so far.
	s := &Service{cfg: withDefaults(cfg), log: logger}
	defer func() {
		if err != nil {
			s.closeParts()
			err = &StartError{Err: err}
		}
	}()
	if err := s.build(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// build creates the parts, stopping at the first that fails; closeParts
// releases those created.
func (s *Service) build(ctx context.Context) error {
	// Bind first: a port in use is then reported before the dev broker or
	// the Kafka client has started (and logged) anything.
	if err := s.listen(); err != nil {
		return err
	}
	// Metrics before the other parts: METRICS_ADDR is bound with PORT, and
	// the hub's writers feed the latency histogram; everything else is
	// read from the parts at scrape time.
	if err := s.newMetrics(); err != nil {
		return err
	}
	kcfg, since, err := s.newSource(ctx)
	if err != nil {
		return err
	}
	if s.poller, err = netpoll.New(s.log); err != nil {
		return err
	}
	if err := s.newEncoder(); err != nil {
		return err
	}
	s.newHub()
	if err := s.newViews(); err != nil {
		return err
	}
	if err := s.newHistory(kcfg, since); err != nil {
		return err
	}
	if err := s.newServer(); err != nil {
		return err
	}
	return s.newPprof()
}

// listen binds the HTTP listener (HOST, PORT).
func (s *Service) listen() (err error) {
	s.ln, err = net.Listen("tcp", s.cfg.Server.Addr())
	if err != nil {
		return fmt.Errorf("%s/%s: %w", config.EnvHost, config.EnvPort, err)
	}
	return nil
}

// newEncoder creates the encoder of records into messages (FORMAT and the
// decoder's limits).
func (s *Service) newEncoder() error {
	format, err := encode.ParseFormat(s.cfg.Decode.Format)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvFormat, err)
	}
	s.enc = encode.New(encode.Options{
		Format:          format,
		Logger:          s.log,
		MaxRecordRows:   s.cfg.Decode.MaxRecordRows,
		MaxDecodedBytes: s.cfg.Decode.MaxDecodedBytes,
	})
	return nil
}

// newHub creates the fan-out core with the clients' queue, write and ping
// settings; its writers feed the latency histogram.
func (s *Service) newHub() {
	s.hub = hub.New(hub.Config{
		MaxQueueBytes:  s.cfg.Clients.MaxQueueBytes,
		WriteTimeout:   s.cfg.Clients.WriteTimeout,
		PingInterval:   s.cfg.Clients.PingInterval,
		ObserveLatency: s.metrics.ObserveLatency,
		Logger:         s.log,
		Conflate:       s.cfg.Clients.SlowClients == config.SlowConflate,
		// Built once, shared by every client they go to.
		ConflatedNotice: encode.NoticeAll(encode.ConflatedNotice()),
		CaughtUpNotice:  encode.NoticeAll(encode.CaughtUpNotice()),
	})
}

// Addr returns the address the HTTP server listens on.
func (s *Service) Addr() net.Addr { return s.ln.Addr() }

// MetricsAddr returns the address of the METRICS_ADDR listener, or nil.
func (s *Service) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// Ready reports whether the service is consuming its topic and knows the
// topic's identity (for cursors): Readiness is empty.
func (s *Service) Ready() bool { return len(s.Readiness()) == 0 }

// Readiness returns the conditions that keep the service from being ready
// (what /readyz reports), none when it is: the Kafka source's, then the
// topic's identity, named only once the source is ready (it follows from
// the source's). Safe to call from any goroutine.
func (s *Service) Readiness() []ready.Condition {
	unmet := s.source.Conditions()
	if len(unmet) == 0 && !s.tap.Ready() {
		unmet = append(unmet, ready.Condition{Reason: ready.TopicIdentityUnknown,
			Detail: "learning the topic's identity, which every cursor carries"})
	}
	if len(unmet) == 0 && s.table != nil && !s.table.IsSeeded() {
		unmet = append(unmet, ready.Condition{Reason: ready.SnapshotSeeding,
			Detail: "reading the latest value of every key from Kafka (SNAPSHOT_LOOKBACK)"})
	}
	return unmet
}

// Stats is what /stats serves.
type Stats struct {
	Ready   bool         `json:"ready"`
	Hub     hub.Stats    `json:"hub"`
	Decoder encode.Stats `json:"decoder"`
	// Rejected counts requests refused before they became clients.
	Rejected map[server.RejectReason]uint64 `json:"rejected"`
	// Kafka is what the consumer has read: records, lag, broker state.
	Kafka kafka.Stats `json:"kafka"`
	// History is the size of the in-memory history, Resume the
	// catch-ups of clients that started from a position.
	History history.StoreStats  `json:"history"`
	Resume  history.ResumeStats `json:"resume"`
	// Snapshot is the table of latest values (zero with SNAPSHOT=false).
	Snapshot snapshot.Stats `json:"snapshot"`
}

func (s *Service) stats() any {
	st := Stats{Ready: s.Ready(), Hub: s.hub.Stats(), Decoder: s.enc.Stats(),
		Rejected: s.srv.Rejections(), Kafka: s.source.Stats(), Resume: s.resumer.Stats()}
	if s.store != nil {
		st.History = s.store.Stats()
	}
	if s.table != nil {
		st.Snapshot = s.table.Stats()
	}
	return st
}

// Run serves until ctx is done, then shuts down: it stops accepting
// connections, closes every client with 1001 "going away" (bounded by
// SHUTDOWN_TIMEOUT) and closes the Kafka client. It returns nil after a
// clean shutdown.
func (s *Service) Run(ctx context.Context) error {
	defer s.closeParts()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.hub.Run(gctx) })
	g.Go(func() error { return s.tap.Run(gctx) })
	if s.table != nil {
		g.Go(func() error { return s.seed(gctx) })
	}
	g.Go(func() error { return s.hub.Heartbeat(gctx, s.cfg.History.SSEHeartbeat, hub.SSE{}) })
	g.Go(func() error { return s.source.Run(gctx, s.publish()) })
	if s.auth != nil {
		g.Go(func() error { return s.auth.Run(gctx, s.srv.Revoke) })
	}
	g.Go(func() error { return s.announceAvailability(gctx) })
	g.Go(func() error {
		var err error
		if s.certs != nil {
			// TLSListener lets the poller read TLS clients without a
			// goroutine each once they are WebSocket clients.
			err = s.http.ServeTLS(server.TLSListener(s.ln), "", "")
		} else {
			err = s.http.Serve(s.ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	if s.certs != nil {
		g.Go(func() error { return s.certs.Run(gctx, 0) })
	}
	if s.metricsHTTP != nil {
		g.Go(func() error {
			if err := s.metricsHTTP.Serve(s.metricsLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics http: %w", err)
			}
			return nil
		})
	}
	if s.pprofHTTP != nil {
		g.Go(func() error {
			if err := s.pprofHTTP.Serve(s.pprofLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("pprof http: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		if s.pprofHTTP != nil {
			_ = s.pprofHTTP.Close()
		}
		if s.metricsHTTP != nil {
			_ = s.metricsHTTP.Close()
		}
		s.log.Info("shutting down", "clients", s.hub.Stats().Clients)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Server.ShutdownTimeout)
		defer cancel()
		// The hub shuts down alongside the HTTP server, not after it: a
		// connection that has sent no request yet (a browser's preconnect)
		// holds http.Server.Shutdown for seconds, and the clients must get
		// their 1001 meanwhile. Handshakes still in flight join a hub that
		// closes them at once.
		hubDone := make(chan error, 1)
		go func() { hubDone <- s.hub.Shutdown(sctx) }()
		if err := s.http.Shutdown(sctx); err != nil {
			// Connections that never sent a request; nothing to lose.
			_ = s.http.Close()
			s.log.Warn("shutdown: idle HTTP connections closed at the timeout", "timeout", s.cfg.Server.ShutdownTimeout)
		}
		if err := <-hubDone; err != nil {
			s.log.Warn("shutdown: some clients did not close in time", "timeout", s.cfg.Server.ShutdownTimeout)
		}
		return nil
	})
	return g.Wait()
}

// publish returns the source's sink: the tap encodes each fetch's records
// (with their cursors, into the history) and hands the messages to the
// hub. It runs on the source's goroutine only.
func (s *Service) publish() func([]*wsdest.Record) {
	var msgs []*message.Message
	return func(recs []*wsdest.Record) {
		msgs = s.tap.Publish(msgs[:0], recs, s.wants, s.hub.Publish)
		clear(msgs)
	}
}

// closeParts releases whatever New created.
func (s *Service) closeParts() {
	if s.source != nil {
		s.source.Close()
	}
	if s.reader != nil {
		s.reader.Close()
	}
	if s.poller != nil {
		_ = s.poller.Close()
	}
	if s.dev != nil {
		s.dev.Close()
	}
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.pprofLn != nil {
		_ = s.pprofLn.Close()
	}
	if s.metricsLn != nil {
		_ = s.metricsLn.Close()
	}
}

// httpErrorLog routes net/http's own log lines to slog: accept errors
// (such as running out of file descriptors) at warn level, where an
// operator sees them; the rest, which clients can cause at will (a bad
// query string), at debug level.
type httpErrorLog struct{ log *slog.Logger }

func (w httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	if strings.Contains(msg, "Accept error") {
		level = slog.LevelWarn
	}
	w.log.Log(context.Background(), level, "http server: "+msg)
	return len(p), nil
}
