package service

import (
	"fmt"
	"net"
	"net/http"
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
	s.metricsHTTP = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: s.cfg.Clients.WriteTimeout}
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
