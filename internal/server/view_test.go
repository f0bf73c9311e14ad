package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/server"
)

// passView delivers every message.
type passView struct{}

func (passView) Apply(m *message.Message) *message.Message { return m }

// countingViews hands out passView, refuses the expression "bad", and
// counts what is held, by owner.
type countingViews struct {
	mu     sync.Mutex
	held   map[string]int // by owner
	shapes []message.Shape
}

func (v *countingViews) Acquire(where, fields string, shape message.Shape, owner string) (hub.View, error) {
	if where == "bad" {
		return nil, errors.New("where: 1:1: bad")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.held == nil {
		v.held = map[string]int{}
	}
	v.held[owner]++
	v.shapes = append(v.shapes, shape)
	return passView{}, nil
}

func (v *countingViews) Release(_ hub.View, owner string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.held[owner]--
}

// count returns the views held, each given back by another owner than
// its own counted twice.
func (v *countingViews) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for owner, k := range v.held {
		if owner != "127.0.0.1" && k != 0 {
			n += 1000 // held by an owner that is not the client's address
		}
		n += max(k, -k)
	}
	return n
}

// TestViewsAcquiredAndReleased: a client's view is acquired in its shape
// before the upgrade and given back once when it goes (WebSocket and
// SSE); a refused one is a 400 with the reason, and gives back the
// client's connection slot.
func TestViewsAcquiredAndReleased(t *testing.T) {
	views := &countingViews{}
	f := newServer(t, server.Config{Views: views, MaxConnections: 1})
	base := "http" + strings.TrimPrefix(f.url, "ws")
	for range 2 { // the slot of the refused request is given back
		ctx, cancel := e2etest.Context(t)
		_, err := e2etest.Dial(ctx, f.url+"/ws?where=bad")
		cancel()
		var de *e2etest.DialError
		if !errors.As(err, &de) || de.Status != http.StatusBadRequest || !strings.Contains(de.Body, "where: 1:1: bad") {
			t.Fatalf("refused view: %v, want 400 with the reason", err)
		}
	}
	c := e2etest.Connect(t, f.url+"/ws?where=ok&envelope=true")
	if views.count() != 1 {
		t.Fatalf("%d views held, want 1", views.count())
	}
	f.publish("k", `{"a":1}`)
	if got := string(c.Next(t)); got != `{"env":{"a":1}}` {
		t.Fatalf("got %s", got)
	}
	_ = c.Close()
	e2etest.Eventually(t, "the view given back", func() bool { return views.count() == 0 })
	sse := e2etest.ConnectSSE(t, base+"/sse?fields=a", nil)
	e2etest.Eventually(t, "the SSE client's view", func() bool { return views.count() == 1 })
	sse.Close()
	e2etest.Eventually(t, "the SSE view given back", func() bool { return views.count() == 0 })
	views.mu.Lock()
	defer views.mu.Unlock()
	if want := []message.Shape{message.ShapeEnvelope, message.ShapeSSEPlain}; len(views.shapes) != 2 || views.shapes[0] != want[0] || views.shapes[1] != want[1] {
		t.Fatalf("views acquired for shapes %v, want %v", views.shapes, want)
	}
}

// TestViewsNotEnabled: without Views, where= and fields= are refused; an
// empty one asks for nothing.
func TestViewsNotEnabled(t *testing.T) {
	f := newServer(t, server.Config{})
	for _, q := range []string{"where=key%20%3D%3D%20%22a%22", "fields=a"} {
		ctx, cancel := e2etest.Context(t)
		_, err := e2etest.Dial(ctx, f.url+"/ws?"+q)
		cancel()
		var de *e2etest.DialError
		if !errors.As(err, &de) || de.Status != http.StatusBadRequest || !strings.Contains(de.Body, "not enabled") {
			t.Fatalf("%s: %v, want 400 not enabled", q, err)
		}
	}
	c := e2etest.Connect(t, f.url+"/ws?where=&fields=")
	f.publish("k", `{"a":1}`)
	if got := string(c.Next(t)); got != `{"a":1}` {
		t.Fatalf("got %s", got)
	}
}

// TestViewsOverHTTP2: an SSE client over HTTP/2 (whose stream stays with
// net/http) gives its view back when it goes, too.
func TestViewsOverHTTP2(t *testing.T) {
	views := &countingViews{}
	ts, h, _ := newHTTP2Server(t, server.Config{Views: views})
	ctx, cancel := context.WithTimeout(t.Context(), e2etest.Wait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/sse/k?where=ok", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
	}
	e2etest.Eventually(t, "the SSE client added", func() bool { return h.Stats().Clients == 1 })
	if views.count() != 1 {
		t.Fatalf("%d views held, want 1", views.count())
	}
	cancel()
	e2etest.Eventually(t, "the view given back", func() bool { return h.Stats().Clients == 0 && views.count() == 0 })
}
