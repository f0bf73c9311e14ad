package metrics_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wsdest/wsdest/internal/metrics"
)

func snapshot() metrics.Snapshot {
	return metrics.Snapshot{
		Connections:  []metrics.Connections{{Transport: "websocket", Shape: "plain", N: 7}},
		Connects:     9,
		Closes:       map[string]uint64{"client_closed": 2, "queue_full": 0},
		Rejected:     map[string]uint64{"origin": 1},
		AuthRefusals: map[string]uint64{"expired": 1, "revoked": 0},
		Records:      10, Skipped: map[string]uint64{"not_json": 3},
		Deliveries: 70, DeliveredBytes: 700, Writes: 35,
		Lag:      map[int32]int64{0: 0, 1: 4},
		BrokerUp: true, Ready: false,
		NotReady: map[string]bool{"broker_unreachable": false, "topic_missing": true},
	}
}

func TestCollectorValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, snapshot)
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveLatency(12 * time.Millisecond)
	want := `
# HELP wsdest_deliveries_total Frames written to clients.
# TYPE wsdest_deliveries_total counter
wsdest_deliveries_total 70
# HELP wsdest_consumer_lag High watermark minus the consumer's position, by partition, as of the partition's last fetch with records; 0 from its assignment until then.
# TYPE wsdest_consumer_lag gauge
wsdest_consumer_lag{partition="0"} 0
wsdest_consumer_lag{partition="1"} 4
# HELP wsdest_closes_total Clients closed, by reason.
# TYPE wsdest_closes_total counter
wsdest_closes_total{reason="client_closed"} 2
wsdest_closes_total{reason="queue_full"} 0
# HELP wsdest_connections Clients connected now, by transport and shape.
# TYPE wsdest_connections gauge
wsdest_connections{shape="plain",transport="websocket"} 7
# HELP wsdest_not_ready 1 while this condition keeps /readyz at 503 (the reasons /readyz names), 0 otherwise.
# TYPE wsdest_not_ready gauge
wsdest_not_ready{reason="broker_unreachable"} 0
wsdest_not_ready{reason="topic_missing"} 1
# HELP wsdest_ready 1 while /readyz answers 200.
# TYPE wsdest_ready gauge
wsdest_ready 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "wsdest_deliveries_total", "wsdest_consumer_lag", "wsdest_closes_total", "wsdest_connections",
		"wsdest_not_ready", "wsdest_ready"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "wsdest_delivery_latency_seconds"); n != 1 {
		t.Errorf("latency histogram: %d series", n)
	}
	if _, err := metrics.New(reg, snapshot); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}

// TestDashboardAndDocs: every wsdest_ metric the Grafana dashboard
// queries or the docs name exists, and every one that exists is
// documented in docs/operations.md.
func TestDashboardAndDocs(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, snapshot); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range fams {
		have[f.GetName()] = true
	}
	name := regexp.MustCompile(`wsdest_[a-z_]+`)
	base := func(n string) string {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suf); ok && have[b] {
				return b
			}
		}
		return n
	}
	for _, file := range []string{"../../deploy/grafana/wsdest.json", "../../README.md", "../../docs/operations.md", "../../docs/protocol.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(b), -1) {
			if n == "wsdest_token" {
				continue // the credential cookie, not a metric
			}
			if !have[base(n)] {
				t.Errorf("%s names %s, which is not exported", file, n)
			}
		}
	}
	ops, _ := os.ReadFile("../../docs/operations.md")
	for n := range have {
		if strings.HasPrefix(n, "wsdest_") && !strings.Contains(string(ops), "`"+n) {
			t.Errorf("%s is not documented in docs/operations.md", n)
		}
	}
}
