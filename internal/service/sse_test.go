package service_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/e2etest"
)

func sseEnv(t *testing.T, ev e2etest.Event) envMsg {
	t.Helper()
	m := decodeEnv(t, []byte(ev.Data))
	if m.Notice == "" && m.Cursor != ev.ID {
		t.Fatalf("event id %q, envelope cursor %q", ev.ID, m.Cursor)
	}
	return m
}

func readSSE(t *testing.T, c *e2etest.SSEClient, n int) ([]envMsg, []e2etest.Event) {
	t.Helper()
	var ms []envMsg
	var evs []e2etest.Event
	for range n {
		ev := c.Next(t)
		evs = append(evs, ev)
		ms = append(ms, sseEnv(t, ev))
	}
	return ms, evs
}

// Each record is one event: the cursor as its id, and as data exactly the
// JSON a WebSocket client of the same shape gets. A client resumes with
// the Last-Event-ID header (what EventSource sends on reconnect) or the
// last_event_id / lastEventId query parameters.
func TestSSE(t *testing.T) {
	b := e2etest.StartBroker(t, "sse", 3)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)

	wsEnv := e2etest.Connect(t, svc.URL("/ws?envelope=true"))
	wsPlain := e2etest.Connect(t, svc.URL("/ws/k1"))
	sse := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?envelope=true"), nil)
	if ct := sse.Resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") ||
		sse.Resp.Header.Get("Cache-Control") != "no-cache" || sse.Resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("headers %v", sse.Resp.Header)
	}
	ssePlain := e2etest.ConnectSSE(t, svc.HTTPURL("/sse/k1"), nil)
	produceN(p, 0, 12, time.Time{})

	got, evs := readSSE(t, sse, 12)
	if sse.Retry != "2000" {
		t.Fatalf("retry field %q, want 2000", sse.Retry)
	}
	for i, b := range wsEnv.NextN(t, 12) {
		if string(b) != evs[i].Data {
			t.Fatalf("event %d data %s, WebSocket envelope %s", i, evs[i].Data, b)
		}
	}
	checkStream(t, got, span(0, 12))
	for _, want := range wsPlain.NextN(t, 2) { // k1: values 1 and 7
		if ev := ssePlain.Next(t); ev.Data != string(want) || ev.ID == "" {
			t.Fatalf("plain event %+v, WebSocket plain %s", ev, want)
		}
	}
	sse.Close()
	produceN(p, 12, 16, time.Time{})

	tests := []struct {
		name   string
		query  string
		header http.Header
		after  int // index of the event whose id resumes
	}{
		{"header", "", http.Header{"Last-Event-Id": {evs[7].ID}}, 7},
		{"last_event_id", "&last_event_id=" + evs[3].ID, nil, 3},
		{"lastEventId", "&lastEventId=" + evs[10].ID, nil, 10},
		{"header wins over from", "&from=earliest", http.Header{"Last-Event-Id": {evs[5].ID}}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?envelope=true"+tt.query), tt.header)
			rest, _ := readSSE(t, c, 15-tt.after)
			checkStream(t, append(append([]envMsg(nil), got[:tt.after+1]...), rest...), span(0, 16))
		})
	}
}

func TestSSEAuth(t *testing.T) {
	b := e2etest.StartBroker(t, "sse-auth", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{
		"AUTH_API_KEYS": "key-1", "WS_USERNAME": "user", "WS_PASSWORD": "pass",
	}))
	svc.WaitReady(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pass"))
	tests := []struct {
		name   string
		path   string
		header http.Header
		ok     bool
	}{
		{"none", "/sse", nil, false},
		{"api_key", "/sse?api_key=key-1", nil, false},
		{"bad token", "/sse?token=nope", nil, false},
		{"token", "/sse?token=key-1", nil, true},
		{"bearer", "/sse", http.Header{"Authorization": {"Bearer key-1"}}, true},
		{"basic", "/sse", http.Header{"Authorization": {basic}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := e2etest.Context(t)
			defer cancel()
			c, resp, err := e2etest.DialSSE(ctx, svc.HTTPURL(tt.path), tt.header)
			if err != nil {
				t.Fatal(err)
			}
			if tt.ok {
				if c == nil {
					t.Fatalf("status %d", resp.StatusCode)
				}
				c.Close()
				return
			}
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("status %d, WWW-Authenticate %q; want 401 with a Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			want := "no credential: use ?token=KEY, Authorization: Bearer or Basic\n"
			if strings.Contains(tt.path, "token=") {
				want = "credential not accepted\n"
			}
			if body := resp.Header.Get("X-Test-Body"); body != want {
				t.Errorf("401 body %q, want %q", body, want)
			}
		})
	}
}

// An SSE client that stops reading is closed like a WebSocket one (queue
// bound), and the others keep getting every event.
func TestSSESlowClient(t *testing.T) {
	b := e2etest.StartBroker(t, "sse-slow", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{"MAX_QUEUE_BYTES": "64KiB", "SOCKET_SEND_BUFFER": "4KiB"}))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	_ = e2etest.ConnectSSE(t, svc.HTTPURL("/sse"), nil) // never read
	fast := e2etest.ConnectSSE(t, svc.HTTPURL("/sse"), nil)
	big := strings.Repeat("x", 1000)
	for i := range 400 {
		v, _ := json.Marshal(map[string]any{"i": i, "pad": big})
		p.Produce(nil, v)
		var m struct{ I int }
		if err := json.Unmarshal([]byte(fast.Next(t).Data), &m); err != nil || m.I != i {
			t.Fatalf("fast client: event %d: %+v %v", i, m, err)
		}
	}
	e2etest.Eventually(t, "the stalled SSE client closed", func() bool {
		return svc.Stats(t).Hub.Closes["queue_full"]+svc.Stats(t).Hub.Closes["write_timeout"] >= 1
	})
}
