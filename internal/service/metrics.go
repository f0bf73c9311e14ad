package service

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/metrics"
	"github.com/wsdest/wsdest/internal/ready"
)

// newMetrics creates the service's registry and metrics, and binds
// METRICS_ADDR when it is set.
func (s *Service) newMetrics() error {
	var err error
	s.metrics, err = metrics.New(prometheus.NewRegistry(), s.metricsSnapshot)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if s.cfg.MetricsAddr == "" {
		return nil
	}
	s.metricsLn, err = net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvMetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	// A scrape is an answer like any other: WRITE_TIMEOUT bounds its
	// writing, so that a scraper that stops reading holds nothing.
	s.metricsHTTP = sideServer(mux, s.cfg.Clients.WriteTimeout)
	return nil
}

// The timeouts of every HTTP server of the service: a request's header
// must arrive within readHeaderTimeout of its connection or of the
// previous answer, and a keep-alive connection that sends no request for
// idleTimeout is closed.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 60 * time.Second
)

// sideServer returns a server for METRICS_ADDR or PPROF_ADDR, with the
// timeouts of PORT's and writeTimeout for writing each answer.
func sideServer(h http.Handler, writeTimeout time.Duration) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout,
		WriteTimeout: writeTimeout, MaxHeaderBytes: 16 << 10}
}

// newPprof binds PPROF_ADDR when it is set. Its answers have WRITE_TIMEOUT
// to be written, like METRICS_ADDR's; one that samples first (a CPU
// profile, a trace, a profile's delta over seconds=) gets the sampling
// time on top, which Go's pprof adds to its server's WriteTimeout itself.
func (s *Service) newPprof() error {
	if s.cfg.PprofAddr == "" {
		return nil
	}
	var err error
	s.pprofLn, err = net.Listen("tcp", s.cfg.PprofAddr)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvPprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.pprofHTTP = sideServer(mux, s.cfg.Clients.WriteTimeout)
	return nil
}

// metricsSnapshot gathers, at scrape time, the counters the parts keep.
func (s *Service) metricsSnapshot() metrics.Snapshot {
	h := s.hub.Stats()
	d := s.enc.Stats()
	k := s.source.Stats()
	snap := metrics.Snapshot{
		Connections:    connections(h.ByShape),
		Connects:       h.Accepted,
		Closes:         make(map[string]uint64, len(h.Closes)),
		Rejected:       make(map[string]uint64),
		Records:        k.Records,
		Skipped:        make(map[string]uint64, len(d.Skipped)),
		Deliveries:     h.Written,
		DeliveredBytes: h.Bytes,
		Writes:         h.Writes,
		Superseded:     h.Superseded,
		Conflations:    h.Conflations,
		Conflating:     h.Conflating,
		Lag:            k.Lag,
		BrokerUp:       k.BrokerUp,
		NotReady:       make(map[string]bool, len(ready.Reasons)),
	}
	for _, r := range ready.Reasons {
		snap.NotReady[string(r)] = false
	}
	unmet := s.Readiness()
	snap.Ready = len(unmet) == 0
	for _, c := range unmet {
		snap.NotReady[string(c.Reason)] = true
	}
	for r, n := range h.Closes {
		snap.Closes[string(r)] = n
	}
	for r, n := range d.Skipped {
		snap.Skipped[string(r)] = n
	}
	for r, n := range s.srv.Rejections() {
		snap.Rejected[string(r)] = n
	}
	snap.Rejected["http_connections"] = s.guard.Evicted()
	snap.AuthRefusals = authRefusals(s.auth)
	v := s.views.Stats()
	snap.Views, snap.ViewsRefused, snap.ViewEvalErrors = v.Alive, v.Refused, v.EvalErrors
	if s.table != nil {
		t := s.table.Stats()
		snap.SnapshotKeys, snap.SnapshotEvictions, snap.Snapshots = t.Keys, t.Evictions, t.Served
	}
	return snap
}

// connections splits the hub's clients per shape into the metric's
// transport and shape labels: the SSE shapes are the plain and envelope
// shapes of the "sse" transport.
func connections(byShape map[string]int64) []metrics.Connections {
	out := make([]metrics.Connections, 0, len(byShape))
	for name, n := range byShape {
		transport, shape := "websocket", name
		if rest, ok := strings.CutPrefix(name, "sse-"); ok {
			transport, shape = "sse", rest
		}
		out = append(out, metrics.Connections{Transport: transport, Shape: shape, N: n})
	}
	return out
}

// PprofAddr returns the address PPROF_ADDR is served on, or nil.
func (s *Service) PprofAddr() net.Addr {
	if s.pprofLn == nil {
		return nil
	}
	return s.pprofLn.Addr()
}
