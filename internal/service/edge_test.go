package service_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientmodel "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsdest/wsdest/internal/e2etest"
)

// httpsGet fetches url with a client trusting pool and reports the status,
// the protocol the answer came over, and the server certificate's common
// name.
func httpsGet(t *testing.T, url string, pool *x509.CertPool) (status int, proto, cn string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: e2etest.Wait}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Proto, resp.TLS.PeerCertificates[0].Subject.CommonName
}

// TestTLS serves wss:// and https:// with a certificate from a test CA:
// WebSocket clients over TLS receive records, the HTTP endpoints answer
// over HTTP/2, a replaced certificate is picked up without dropping the
// connected client, and a half-written pair keeps the last good one with
// one log line.
func TestTLS(t *testing.T) {
	ca := e2etest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.WritePair(t, dir, "first")
	b := e2etest.StartBroker(t, "t", 1)
	s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{"TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile}))
	base := "https://" + s.Addr()
	e2etest.Eventually(t, "ready over https", func() bool {
		st, _, _ := httpsGet(t, base+"/readyz", ca.Pool())
		return st == 200
	})
	if st, proto, cn := httpsGet(t, base+"/healthz", ca.Pool()); st != 200 || proto != "HTTP/2.0" || cn != "first" {
		t.Errorf("/healthz: %d over %s from %q, want 200 over HTTP/2.0 from \"first\"", st, proto, cn)
	}
	tlsOpt := e2etest.WithTLS(&tls.Config{RootCAs: ca.Pool()})
	c := e2etest.Connect(t, "wss://"+s.Addr()+"/ws", tlsOpt)
	if _, ok := c.Conn().(*tls.Conn); !ok {
		t.Fatalf("client connection is %T, not TLS", c.Conn())
	}
	p := e2etest.NewProducer(t, b)
	p.Produce([]byte("k"), []byte(`{"n":1}`))
	if got := c.Next(t); string(got) != `{"n":1}` {
		t.Errorf("got %s", got)
	}
	// Plain ws:// to a TLS port is refused, not served.
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	if _, err := e2etest.Dial(ctx, "ws://"+s.Addr()+"/ws"); err == nil {
		t.Error("plain ws:// accepted on the TLS port")
	}

	// A half-written pair: the certificate replaced, the key still the old
	// one (mismatched), then a truncated certificate. The service keeps
	// "first" and says so once per version of the files.
	second, secondKey := ca.Issue(t, "second")
	if err := os.WriteFile(certFile, second[:len(second)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	e2etest.Eventually(t, "the bad pair logged", func() bool { return len(s.Log.Lines("do not load")) == 1 })
	if _, _, cn := httpsGet(t, base+"/healthz", ca.Pool()); cn != "first" {
		t.Errorf("after a half-written file the server presents %q, want \"first\"", cn)
	}
	// The rest of the files: the new pair is picked up.
	writeAtomically(t, keyFile, secondKey)
	writeAtomically(t, certFile, second)
	e2etest.Eventually(t, "the new certificate", func() bool {
		_, _, cn := httpsGet(t, base+"/healthz", ca.Pool())
		return cn == "second"
	})
	if n := len(s.Log.Lines("do not load")); n > 2 {
		t.Errorf("%d bad-pair lines, want at most one per version of the files:\n%s", n, strings.Join(s.Log.Lines("do not load"), "\n"))
	}
	if len(s.Log.Lines("tls certificate reloaded")) != 1 {
		t.Errorf("no reload line")
	}
	// The client connected before the reload is still served.
	p.Produce([]byte("k"), []byte(`{"n":2}`))
	if got := c.Next(t); string(got) != `{"n":2}` {
		t.Errorf("after the reload the old client got %s", got)
	}
	c2 := e2etest.Connect(t, "wss://"+s.Addr()+"/ws", tlsOpt)
	if cn := c2.Conn().(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "second" {
		t.Errorf("new client saw %q", cn)
	}
}

// writeAtomically replaces path the way a careful deployment tool does:
// a temporary file renamed over it.
func writeAtomically(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// scrape fetches and parses a Prometheus text exposition.
func scrape(t *testing.T, url string) map[string]*dto {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v\n%s", url, err, body)
	}
	return fams
}

// value returns the value of the family's series with the given labels
// ("k=v" pairs), or -1.
func value(fams map[string]*dto, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetrics scrapes /metrics before and after 10 records reach 7
// clients: the counters move by what was sent.
func TestMetrics(t *testing.T) {
	b, p, s := start(t, 2, e2etest.Env{"METRICS_ADDR": "127.0.0.1:0", "ALLOWED_ORIGINS": "https://ok.example.com"})
	const clients, records = 7, 10
	var cs []*e2etest.Client
	for range clients {
		cs = append(cs, e2etest.Connect(t, s.URL("/ws")))
	}
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	if _, err := e2etest.Dial(ctx, s.URL("/ws"), e2etest.WithHeader(http.Header{"Origin": {"https://evil.example.com"}})); err == nil {
		t.Fatal("origin not refused")
	}
	before := scrape(t, s.HTTPURL("/metrics"))
	for i := range records {
		p.Produce(fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, `{"i":%d}`, i))
	}
	for _, c := range cs {
		c.NextN(t, records)
	}
	e2etest.Eventually(t, "every delivery counted", func() bool {
		return value(scrape(t, s.HTTPURL("/metrics")), "wsdest_deliveries_total")-value(before, "wsdest_deliveries_total") == clients*records
	})
	after := scrape(t, s.HTTPURL("/metrics"))
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wsdest_records_total", nil, records},
		{"wsdest_connections", []string{"transport=websocket", "shape=plain"}, clients},
		{"wsdest_connections", []string{"transport=websocket", "shape=envelope"}, 0},
		{"wsdest_connections", []string{"transport=sse", "shape=plain"}, 0},
		{"wsdest_connects_total", nil, clients},
		{"wsdest_rejected_total", []string{"reason=origin"}, 1},
		{"wsdest_rejected_total", []string{"reason=auth"}, 0},
		{"wsdest_closes_total", []string{"reason=queue_full"}, 0},
		{"wsdest_auth_refusals_total", []string{"reason=expired"}, 0}, // present at zero, auth off
		{"wsdest_auth_refusals_total", []string{"reason=revoked"}, 0},
		{"wsdest_broker_up", nil, 1},
		{"wsdest_ready", nil, 1},
		{"wsdest_build_info", nil, 1},
	}
	for _, c := range checks {
		if got := value(after, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if d := value(after, "wsdest_delivered_bytes_total") - value(before, "wsdest_delivered_bytes_total"); d < float64(clients*records*len(`{"i":0}`)) {
		t.Errorf("delivered bytes grew by %v", d)
	}
	// Each write carries one or more frames, and a write the kernel
	// takes only in part is finished by one more (wsdest_writes_total
	// counts system calls): at most one per delivery, and one per client
	// besides.
	if w := value(after, "wsdest_writes_total") - value(before, "wsdest_writes_total"); w <= 0 || w > clients*records+clients {
		t.Errorf("writes grew by %v for %d deliveries", w, clients*records)
	}
	lag0, lag1 := value(after, "wsdest_consumer_lag", "partition=0"), value(after, "wsdest_consumer_lag", "partition=1")
	if lag0 != 0 && lag1 != 0 {
		t.Errorf("lag = %v, %v, want 0 for the partitions read", lag0, lag1)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "wsdest_delivery_latency_seconds", "wsdest_records_skipped_total"} {
		if after[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	// Clients of the other transport and shape are counted apart.
	e2etest.ConnectSSE(t, s.HTTPURL("/sse?envelope=true"), nil)
	e2etest.Connect(t, s.URL("/ws?envelope=true"))
	e2etest.Eventually(t, "SSE and envelope clients counted", func() bool {
		m := scrape(t, s.HTTPURL("/metrics"))
		return value(m, "wsdest_connections", "transport=sse", "shape=envelope") == 1 &&
			value(m, "wsdest_connections", "transport=websocket", "shape=envelope") == 1 &&
			value(m, "wsdest_connections", "transport=websocket", "shape=plain") == clients
	})
	// The same on METRICS_ADDR.
	addr := metricsAddr(t, s)
	if got := value(scrape(t, "http://"+addr+"/metrics"), "wsdest_records_total"); got != records {
		t.Errorf("METRICS_ADDR: records %v", got)
	}
	_ = b
}

func metricsAddr(t *testing.T, s *e2etest.Service) string {
	t.Helper()
	a := s.Svc.MetricsAddr()
	if a == nil {
		t.Fatal("no metrics listener")
	}
	return a.String()
}

type dto = clientmodel.MetricFamily
