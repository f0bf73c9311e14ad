package service_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wsdest/wsdest/internal/e2etest"
)

// readyz fetches /readyz as text and as JSON.
func readyz(t *testing.T, s *e2etest.Service) (status int, text string, js readyzJSON) {
	t.Helper()
	status, text = s.Get(t, "/readyz")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.HTTPURL("/readyz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &js); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/readyz as JSON: %v (%s): %s", err, resp.Header.Get("Content-Type"), body)
	}
	if resp.StatusCode != status {
		t.Errorf("/readyz: text %d, JSON %d", status, resp.StatusCode)
	}
	return status, text, js
}

type readyzJSON struct {
	Ready      bool `json:"ready"`
	Conditions []struct {
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	} `json:"conditions"`
}

// waitReason waits until /readyz names reason, and returns its text and
// JSON answers then.
func waitReason(t *testing.T, s *e2etest.Service, reason string) (string, readyzJSON) {
	t.Helper()
	var text string
	var js readyzJSON
	e2etest.Eventually(t, "/readyz naming "+reason, func() bool {
		var status int
		status, text, js = readyz(t, s)
		// Fetched one after the other: both must name it.
		return status == http.StatusServiceUnavailable && len(js.Conditions) > 0 && js.Conditions[0].Reason == reason &&
			strings.HasPrefix(text, "not ready: "+reason+": ")
	})
	return text, js
}

// notReadyMetric returns the wsdest_not_ready series of /metrics, by
// reason.
func notReadyMetric(t *testing.T, s *e2etest.Service) map[string]string {
	t.Helper()
	_, body := s.Get(t, "/metrics")
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^wsdest_not_ready\{reason="([a-z_]+)"\} (\d)$`).FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestReadyzBrokerUnreachable: with a broker address nothing answers at,
// /readyz says so, naming the address tried, in text and JSON, and the
// metric names the reason.
func TestReadyzBrokerUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := e2etest.StartService(t, e2etest.Env{"Quix__Broker__Address": addr, "input": "t"})
	want := "not ready: broker_unreachable: no Kafka broker answers: tried " + addr + ": "
	var text string
	var js readyzJSON
	// Before the first attempt fails it says it is connecting.
	e2etest.Eventually(t, "/readyz naming the address tried", func() bool {
		text, js = waitReason(t, s, "broker_unreachable")
		return strings.HasPrefix(text, want) && len(js.Conditions) > 0 && strings.Contains(js.Conditions[0].Detail, "tried")
	})
	if !strings.HasPrefix(text, want) || !strings.Contains(text, "connection refused") || strings.Count(text, "\n") != 1 {
		t.Errorf("/readyz text %q, want one line starting %q and saying why", text, want)
	}
	if js.Ready || len(js.Conditions) != 1 || !strings.Contains(js.Conditions[0].Detail, addr) {
		t.Errorf("/readyz JSON %+v, want one condition naming %s", js, addr)
	}
	if m := notReadyMetric(t, s); m["broker_unreachable"] != "1" || m["topic_missing"] != "0" || m["partitions_unassigned"] != "0" {
		t.Errorf("wsdest_not_ready %v, want broker_unreachable 1, the others 0", m)
	}
}

// TestReadyzTopicMissing: a broker that answers but lacks the topic makes
// /readyz name the topic; once it is created, /readyz turns 200.
func TestReadyzTopicMissing(t *testing.T) {
	t.Parallel()
	b := e2etest.StartBroker(t, "other", 1)
	s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{"input": "missing-topic"}))
	text, js := waitReason(t, s, "topic_missing")
	if want := "not ready: topic_missing: topic \"missing-topic\" does not exist on the broker (waiting for it to be created)\n"; text != want {
		t.Errorf("/readyz text %q, want %q", text, want)
	}
	if len(js.Conditions) != 1 || !strings.Contains(js.Conditions[0].Detail, `"missing-topic"`) {
		t.Errorf("/readyz JSON %+v", js)
	}
	if m := notReadyMetric(t, s); m["topic_missing"] != "1" || m["broker_unreachable"] != "0" {
		t.Errorf("wsdest_not_ready %v, want topic_missing 1", m)
	}
	ctx, cancel := context.WithTimeout(t.Context(), e2etest.Wait)
	defer cancel()
	p := e2etest.NewProducerTo(t, b.Addr())
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "missing-topic", 1, 1
	req.Topics = append(req.Topics, rt)
	if _, err := req.RequestWith(ctx, p.Client()); err != nil {
		t.Fatal(err)
	}
	s.WaitReady(t)
	if status, text, js := readyz(t, s); status != 200 || text != "ready\n" || !js.Ready || len(js.Conditions) != 0 {
		t.Errorf("/readyz once the topic exists: %d %q %+v", status, text, js)
	}
}

// TestReadyzPartitionsUnassigned: while the consumer group has not
// assigned the partitions (its join is held; franz-go joins on a
// connection of its own, so the broker answers everything else), /readyz
// says so.
func TestReadyzPartitionsUnassigned(t *testing.T) {
	t.Parallel()
	b := e2etest.StartBroker(t, "t", 2)
	release := make(chan struct{})
	var once sync.Once
	c := b.Cluster()
	c.ControlKey(int16(kmsg.JoinGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		once.Do(func() { c.SleepControl(func() { <-release }) })
		return nil, nil, false
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{"Quix__Consumer_Group": "g"}))
	text, _ := waitReason(t, s, "partitions_unassigned")
	if want := "not ready: partitions_unassigned: consumer group \"g\" has not yet assigned and positioned the topic's partitions\n"; text != want {
		t.Errorf("/readyz text %q, want %q", text, want)
	}
	close(release)
	s.WaitReady(t)
}

// TestFirstScrapeHasEveryGauge: the first /metrics scrape after /readyz
// turns 200 has a series of every gauge: the lag of every partition (on a
// topic nothing was produced to), the connections of every transport and
// shape, and every readiness reason.
func TestFirstScrapeHasEveryGauge(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  e2etest.Env
	}{
		{"no group", nil},
		{"group", e2etest.Env{"Quix__Consumer_Group": "g"}},
		{"group, earliest", e2etest.Env{"Quix__Consumer_Group": "g2", "AUTO_OFFSET_RESET": "earliest"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := e2etest.StartBroker(t, "t", 3)
			s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(tt.env))
			s.WaitReady(t)
			_, body := s.Get(t, "/metrics")
			for _, want := range []string{
				`wsdest_consumer_lag{partition="0"} 0`,
				`wsdest_consumer_lag{partition="1"} 0`,
				`wsdest_consumer_lag{partition="2"} 0`,
				`wsdest_connections{shape="plain",transport="websocket"} 0`,
				`wsdest_connections{shape="envelope",transport="websocket"} 0`,
				`wsdest_connections{shape="plain",transport="sse"} 0`,
				`wsdest_connections{shape="envelope",transport="sse"} 0`,
				`wsdest_broker_up 1`,
				`wsdest_ready 1`,
				`wsdest_not_ready{reason="broker_unreachable"} 0`,
				`wsdest_not_ready{reason="topic_missing"} 0`,
				`wsdest_not_ready{reason="partitions_unassigned"} 0`,
				`wsdest_not_ready{reason="topic_identity_unknown"} 0`,
			} {
				if !strings.Contains(body, want+"\n") {
					t.Errorf("first scrape lacks %s", want)
				}
			}
			// Every gauge declared has a series.
			for _, m := range regexp.MustCompile(`(?m)^# TYPE (wsdest_\w+) gauge$`).FindAllStringSubmatch(body, -1) {
				if !regexp.MustCompile(`(?m)^` + m[1] + `[{ ]`).MatchString(body) {
					t.Errorf("gauge %s has no series", m[1])
				}
			}
		})
	}
}
