package service

import (
	"github.com/wsdest/wsdest/internal/metrics"
)

// metricsSnapshot gathers, at scrape time, the counters the parts keep.
func (s *Service) metricsSnapshot() metrics.Snapshot {
	h := s.hub.Stats()
	d := s.enc.Stats()
	k := s.source.Stats()
	snap := metrics.Snapshot{
		// The hub counts clients, not yet clients per shape or
		// transport: every client is a WebSocket client, of either shape.
		Connections:    []metrics.Connections{{Transport: "websocket", Shape: "all", N: h.Clients}},
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
		Ready:          s.source.Ready(),
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
	return snap
}
