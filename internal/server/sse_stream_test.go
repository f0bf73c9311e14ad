package server_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/netpoll"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/sseframe"
)

// newHTTP2Server serves a Server over TLS with HTTP/2 on, with a real hub
// (whose WriteTimeout is the server's) and poller, until the test ends.
func newHTTP2Server(t *testing.T, cfg server.Config) (*httptest.Server, *hub.Hub, *e2etest.LogBuffer) {
	t.Helper()
	lb := &e2etest.LogBuffer{}
	lb.DumpOnFailure(t, "server")
	h := hub.New(hub.Config{Logger: lb.Logger(slog.LevelDebug), PingInterval: -1, WriteTimeout: cfg.WriteTimeout})
	p, err := netpoll.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = lb.Logger(slog.LevelDebug)
	ts := httptest.NewUnstartedServer(server.New(cfg, h, p))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), e2etest.Wait)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		p.Close()
	})
	return ts, h, lb
}

// getSSE asks ts for the SSE stream of key k, with ctx; the answer's body
// is closed when the test ends.
func getSSE(ctx context.Context, t *testing.T, ts *httptest.Server) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/sse/k", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Over HTTP/2 (TLS) the connection cannot be taken over: the events go
// through net/http's response, with the same framing, and the client's
// going away ends the stream.
func TestSSEOverHTTP2(t *testing.T) {
	ts, h, lb := newHTTP2Server(t, server.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), e2etest.Wait)
	defer cancel()
	resp := getSSE(ctx, t, ts)
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("%s %d %v", resp.Proto, resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != "retry: 2000\n" {
		t.Fatalf("first line %q", line)
	}
	_, _ = br.ReadString('\n')
	e2etest.Eventually(t, "the SSE client added", func() bool { return h.Stats().Clients == 1 })
	// Its arrival is logged like a WebSocket client's: at debug, within
	// the per-second limit of such lines (once the hub has it attached,
	// a moment after it counts as a client).
	e2etest.Eventually(t, "the connect line", func() bool { return len(lb.Lines("client connected")) > 0 })
	if l := lb.Lines("client connected"); len(l) != 1 || !strings.Contains(l[0], "transport=sse") ||
		!strings.Contains(l[0], "proto=HTTP/2.0") || !strings.Contains(l[0], "suppressed=0") {
		t.Errorf("connect lines %q, want one for this SSE client", l)
	}
	m := &message.Message{Key: []byte("k"), Rows: 1}
	m.Frames[message.ShapeSSEPlain] = sseframe.Event("c1", []byte(`{"a":1}`))
	h.Publish([]*message.Message{m})
	var got []string
	for len(got) < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, line)
	}
	if strings.Join(got, "") != "id: c1\ndata: {\"a\":1}\n\n" {
		t.Fatalf("event %q", got)
	}
	cancel() // the client goes away
	e2etest.Eventually(t, "the SSE client removed after its request ended", func() bool { return h.Stats().Clients == 0 })
}

// An SSE stream over HTTP/2 that is idle for longer than the write
// timeouts lives on: a response's write deadline resets an HTTP/2 stream
// when it passes, written to or not, so it bounds each write only.
func TestSSEOverHTTP2OutlivesWriteDeadlines(t *testing.T) {
	const wt = 100 * time.Millisecond
	ts, h, _ := newHTTP2Server(t, server.Config{WriteTimeout: wt})
	ctx, cancel := context.WithTimeout(t.Context(), e2etest.Wait)
	defer cancel()
	resp := getSSE(ctx, t, ts)
	if resp.ProtoMajor != 2 {
		t.Fatalf("served over %s", resp.Proto)
	}
	br := bufio.NewReader(resp.Body)
	e2etest.Eventually(t, "the SSE client added", func() bool { return h.Stats().Clients == 1 })
	for i := range 3 {
		time.Sleep(5 * wt) // idle for longer than both deadlines
		m := &message.Message{Key: []byte("k"), Rows: 1}
		m.Frames[message.ShapeSSEPlain] = sseframe.Event(fmt.Sprintf("c%d", i), []byte(`{}`))
		h.Publish([]*message.Message{m})
		want := fmt.Sprintf("id: c%d\n", i)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("event %d after an idle stretch: %v", i, err)
			}
			if line == want {
				break
			}
		}
	}
}
