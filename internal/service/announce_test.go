package service_test

import (
	"testing"

	"github.com/wsdest/wsdest/internal/e2etest"
)

// TestUnavailableNotice: when the broker goes away, envelope and SSE
// clients are told {"notice":"unavailable","reason":"broker_unreachable"}
// once /readyz reports it, a client that connects meanwhile is told at
// once, and when the broker is back every one of them is told
// {"notice":"available"} before the records that follow (the broker comes
// back with the topic under a new id: envelope clients are told
// {"notice":"reset"} before its first record). Plain clients get the
// records only.
func TestUnavailableNotice(t *testing.T) {
	t.Parallel()
	b, _, s := start(t, 2, nil)
	env := e2etest.Connect(t, s.URL("/ws?envelope=true"))
	envKey := e2etest.Connect(t, s.URL("/ws/k1?envelope=true")) // notices go to every subscription
	plain := e2etest.Connect(t, s.URL("/ws"))
	sse := e2etest.ConnectSSE(t, s.HTTPURL("/sse?envelope=true"), nil)
	ssePlain := e2etest.ConnectSSE(t, s.HTTPURL("/sse/k1"), nil)

	const unavailable = `{"notice":"unavailable","reason":"broker_unreachable"}`
	const available = `{"notice":"available"}`
	b.Stop()
	s.WaitUnready(t)
	for _, c := range []*e2etest.Client{env, envKey} {
		if got := string(c.Next(t)); got != unavailable {
			t.Fatalf("envelope client got %s, want %s", got, unavailable)
		}
	}
	for _, c := range []*e2etest.SSEClient{sse, ssePlain} {
		if ev := c.Next(t); ev.Data != unavailable || ev.ID != "" {
			t.Fatalf("SSE client got %+v, want the notice without an id", ev)
		}
	}
	late := e2etest.Connect(t, s.URL("/ws?envelope=true"))
	if got := string(late.Next(t)); got != unavailable {
		t.Fatalf("client connected during the outage got %s, want %s", got, unavailable)
	}
	lateSSE := e2etest.ConnectSSE(t, s.HTTPURL("/sse"), nil)
	if ev := lateSSE.Next(t); ev.Data != unavailable {
		t.Fatalf("SSE client connected during the outage got %+v", ev)
	}
	latePlain := e2etest.Connect(t, s.URL("/ws"))

	b.Restart(t)
	s.WaitReady(t)
	for _, c := range []*e2etest.Client{env, envKey, late} {
		if got := string(c.Next(t)); got != available {
			t.Fatalf("envelope client got %s, want %s", got, available)
		}
	}
	for _, c := range []*e2etest.SSEClient{sse, ssePlain, lateSSE} {
		if ev := c.Next(t); ev.Data != available {
			t.Fatalf("SSE client got %+v, want %s", ev, available)
		}
	}
	p := e2etest.NewProducer(t, b) // the old producer holds the old topic's id
	p.Produce([]byte("k1"), []byte(`{"after":1}`))
	for _, c := range []*e2etest.Client{plain, latePlain} {
		if got := string(c.Next(t)); got != `{"after":1}` {
			t.Fatalf("plain client got %s, want only the record", got)
		}
		c.ExpectQuiet(t)
	}
	for _, c := range []*e2etest.Client{env, envKey, late} {
		if m := decodeEnv(t, c.Next(t)); m.Notice != "reset" || m.Reason != "topic_recreated" {
			t.Fatalf("envelope client got %+v after the notice, want the reset notice of the new topic", m)
		}
		if m := decodeEnv(t, c.Next(t)); m.Notice != "" || string(m.Value) != `{"after":1}` {
			t.Fatalf("envelope client got %+v after the reset notice, want the record", m)
		}
		c.ExpectQuiet(t)
	}
	// A client that connects now gets no notice.
	fresh := e2etest.Connect(t, s.URL("/ws?envelope=true"))
	p.Produce([]byte("k1"), []byte(`{"after":2}`))
	if m := decodeEnv(t, fresh.Next(t)); string(m.Value) != `{"after":2}` {
		t.Fatalf("client connected after the outage got %+v, want the record", m)
	}
}

// TestUnavailableNoticeTopicMissing: a topic that does not exist is
// announced with its own reason.
func TestUnavailableNoticeTopicMissing(t *testing.T) {
	t.Parallel()
	b := e2etest.StartBroker(t, "other", 1)
	s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{"input": "nope"}))
	waitReason(t, s, "topic_missing")
	c := e2etest.Connect(t, s.URL("/ws?envelope=true"))
	if got, want := string(c.Next(t)), `{"notice":"unavailable","reason":"topic_missing"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
