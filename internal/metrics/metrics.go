// Package metrics exposes wsdest's counters to Prometheus.
//
// Nothing here runs on the delivery path: the collector reads the counters
// the other packages already keep (the hub's, the encoder's, the Kafka
// source's, the server's) when Prometheus scrapes, and turns them into
// constant metrics. The one exception is the end-to-end latency histogram,
// which the hub's writers feed for a sampled write only (about ten a second
// in all, see hub.Config.ObserveLatency).
//
// Everything is registered on a registry passed in; there are no globals.
package metrics

import (
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Snapshot is what the collector reads at each scrape. Every map holds
// every reason (or partition) the source knows, zero or not.
type Snapshot struct {
	// Connections counts the connected clients by transport and shape.
	Connections []Connections
	// Connects counts the clients ever accepted.
	Connects uint64
	// Closes counts closed clients by reason.
	Closes map[string]uint64
	// Rejected counts requests refused before they became clients.
	Rejected map[string]uint64
	// AuthRefusals counts credentials refused, and connections closed
	// for their credential, by reason.
	AuthRefusals map[string]uint64
	// Records counts the records consumed from Kafka.
	Records uint64
	// Skipped counts records skipped (or sent without a plain frame) by
	// reason.
	Skipped map[string]uint64
	// Deliveries counts frames written to clients; DeliveredBytes their
	// bytes; Writes the write system calls that carried them.
	Deliveries, DeliveredBytes, Writes uint64
	// Superseded counts messages dropped for a newer one of their key by
	// a max_rate (once for the clients that share it) or a client's own
	// latest-wins set; Conflations the times a client entered conflated
	// mode, Conflating the clients in it now.
	Superseded, Conflations uint64
	Conflating              int64
	// Lag is the consumer lag by partition.
	Lag map[int32]int64
	// BrokerUp reports whether a Kafka broker is reachable; Ready whether
	// the service is ready (/readyz).
	BrokerUp, Ready bool
	// NotReady holds every readiness condition by reason, true while it
	// keeps the service from being ready.
	NotReady map[string]bool
	// Views is the number of distinct views alive; ViewsRefused counts
	// the requests refused at MAX_VIEWS; ViewEvalErrors the filter
	// evaluations that failed (the record was dropped for the view).
	Views                        int
	ViewsRefused, ViewEvalErrors uint64
	// SnapshotKeys is the keys in the table of latest values;
	// SnapshotEvictions counts keys evicted at its bound; Snapshots
	// counts the snapshots clients took (all 0 with SNAPSHOT=false).
	SnapshotKeys                 int
	SnapshotEvictions, Snapshots uint64
}

// Connections is the number of clients of one transport and shape.
type Connections struct {
	Transport, Shape string
	N                int64
}

// LatencyBuckets are the bounds of wsdest_delivery_latency_seconds: 1 ms
// to about 8 s, doubling.
var LatencyBuckets = prometheus.ExponentialBuckets(0.001, 2, 14)

// Metrics is the service's Prometheus instrumentation. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	latency prometheus.Histogram
}

// New registers wsdest's collector (reading snap at each scrape), the
// latency histogram, build information and the Go and process collectors
// on reg.
func New(reg *prometheus.Registry, snap func() Snapshot) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wsdest_delivery_latency_seconds",
			Help:    "Time from a record's Kafka timestamp to the end of the write that delivered it, for sampled writes.",
			Buckets: LatencyBuckets,
		}),
	}
	for _, c := range []prometheus.Collector{
		&collector{snap: snap},
		m.latency,
		buildInfo(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveLatency records one sampled end-to-end latency. It is the
// function to pass as hub.Config.ObserveLatency.
func (m *Metrics) ObserveLatency(d time.Duration) { m.latency.Observe(d.Seconds()) }

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func buildInfo() prometheus.Collector {
	version, revision, goVersion := "(devel)", "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version, goVersion = bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "wsdest_build_info",
		Help:        "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	})
	g.Set(1)
	return g
}

var (
	descConnections = prometheus.NewDesc("wsdest_connections", "Clients connected now, by transport and shape.", []string{"transport", "shape"}, nil)
	descConnects    = prometheus.NewDesc("wsdest_connects_total", "Clients accepted.", nil, nil)
	descCloses      = prometheus.NewDesc("wsdest_closes_total", "Clients closed, by reason.", []string{"reason"}, nil)
	descRejected    = prometheus.NewDesc("wsdest_rejected_total", "Requests refused before they became clients, by reason.", []string{"reason"}, nil)
	descAuth        = prometheus.NewDesc("wsdest_auth_refusals_total", "Credentials refused, and clients closed for their credential (expired, revoked), by reason.", []string{"reason"}, nil)
	descRecords     = prometheus.NewDesc("wsdest_records_total", "Records consumed from Kafka.", nil, nil)
	descSkipped     = prometheus.NewDesc("wsdest_records_skipped_total", "Records skipped or delivered without a plain frame, by reason.", []string{"reason"}, nil)
	descDeliveries  = prometheus.NewDesc("wsdest_deliveries_total", "Frames written to clients.", nil, nil)
	descBytes       = prometheus.NewDesc("wsdest_delivered_bytes_total", "Bytes written to clients.", nil, nil)
	descWrites      = prometheus.NewDesc("wsdest_writes_total", "Write system calls to clients (each carries one or more frames).", nil, nil)
	descSuperseded  = prometheus.NewDesc("wsdest_superseded_total", "Messages dropped because a newer message of their key replaced them while they waited: by a max_rate (counted once for the clients that share it) or by a slow or conflated client (SLOW_CLIENTS=conflate).", nil, nil)
	descConflations = prometheus.NewDesc("wsdest_conflations_total", "Times a client fell behind and entered conflated mode (SLOW_CLIENTS=conflate).", nil, nil)
	descConflating  = prometheus.NewDesc("wsdest_conflating_clients", "Clients in conflated mode now: behind, getting each key's latest message until they catch up.", nil, nil)
	descLag         = prometheus.NewDesc("wsdest_consumer_lag", "High watermark minus the consumer's position, by partition, as of the partition's last fetch with records; 0 from its assignment until then.", []string{"partition"}, nil)
	descBrokerUp    = prometheus.NewDesc("wsdest_broker_up", "1 while a Kafka broker answers, 0 during an outage.", nil, nil)
	descReady       = prometheus.NewDesc("wsdest_ready", "1 while /readyz answers 200.", nil, nil)
	descNotReady    = prometheus.NewDesc("wsdest_not_ready", "1 while this condition keeps /readyz at 503 (the reasons /readyz names), 0 otherwise.", []string{"reason"}, nil)

	descSnapshotKeys      = prometheus.NewDesc("wsdest_snapshot_keys", "Keys in the table of latest values that snapshot=true serves.", nil, nil)
	descSnapshotEvictions = prometheus.NewDesc("wsdest_snapshot_evictions_total", "Keys evicted from the table of latest values at SNAPSHOT_MAX_KEYS (the least recently updated).", nil, nil)
	descSnapshots         = prometheus.NewDesc("wsdest_snapshots_total", "Snapshots served to clients (snapshot=true).", nil, nil)
)

// The views' metrics (package view's Registry.Stats).
var (
	descViews        = prometheus.NewDesc("wsdest_views", "Distinct views (where= filter, fields= projection and shape) alive now.", nil, nil)
	descViewsRefused = prometheus.NewDesc("wsdest_views_refused_total", "Requests refused because MAX_VIEWS distinct views were alive, or the address held MAX_VIEWS_PER_IP.", nil, nil)
	descViewErrors   = prometheus.NewDesc("wsdest_view_eval_errors_total", "Filter evaluations that failed (a missing field, a wrong type, the cost limit); the record is not delivered to the view's clients.", nil, nil)
)

// collector turns a Snapshot into constant metrics at scrape time.
type collector struct{ snap func() Snapshot }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descConnects, descCloses, descRejected, descAuth, descRecords,
		descSkipped, descDeliveries, descBytes, descWrites, descSuperseded, descConflations, descConflating,
		descLag, descBrokerUp, descReady, descNotReady, descSnapshotKeys, descSnapshotEvictions, descSnapshots} {
		ch <- d
	}
	for _, d := range []*prometheus.Desc{descViews, descViewsRefused, descViewErrors} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	for _, n := range s.Connections {
		ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(n.N), n.Transport, n.Shape)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(descConnects, s.Connects)
	counter(descRecords, s.Records)
	counter(descDeliveries, s.Deliveries)
	counter(descBytes, s.DeliveredBytes)
	counter(descWrites, s.Writes)
	counter(descViewsRefused, s.ViewsRefused)
	counter(descViewErrors, s.ViewEvalErrors)
	ch <- prometheus.MustNewConstMetric(descViews, prometheus.GaugeValue, float64(s.Views))
	counter(descSuperseded, s.Superseded)
	counter(descConflations, s.Conflations)
	ch <- prometheus.MustNewConstMetric(descConflating, prometheus.GaugeValue, float64(s.Conflating))
	counter(descSnapshotEvictions, s.SnapshotEvictions)
	counter(descSnapshots, s.Snapshots)
	ch <- prometheus.MustNewConstMetric(descSnapshotKeys, prometheus.GaugeValue, float64(s.SnapshotKeys))
	byReason := func(d *prometheus.Desc, m map[string]uint64) {
		for _, r := range sortedKeys(m) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(m[r]), r)
		}
	}
	byReason(descCloses, s.Closes)
	byReason(descRejected, s.Rejected)
	byReason(descAuth, s.AuthRefusals)
	byReason(descSkipped, s.Skipped)
	parts := make([]int32, 0, len(s.Lag))
	for p := range s.Lag {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(s.Lag[p]), strconv.Itoa(int(p)))
	}
	ch <- prometheus.MustNewConstMetric(descBrokerUp, prometheus.GaugeValue, b2f(s.BrokerUp))
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, b2f(s.Ready))
	reasons := make([]string, 0, len(s.NotReady))
	for r := range s.NotReady {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		ch <- prometheus.MustNewConstMetric(descNotReady, prometheus.GaugeValue, b2f(s.NotReady[r]), r)
	}
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
