package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsdest/wsdest/internal/auth"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/netpoll"
	"github.com/wsdest/wsdest/internal/ready"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/wsframe"
)

func TestParseSubscription(t *testing.T) {
	tests := []struct {
		target   string
		envelope bool // the default shape
		all      bool
		keys     []string
		shape    message.Shape
		rate     float64
		err      string
	}{
		{target: "/ws", all: true},
		{target: "/ws/", all: true},
		{target: "/", all: true},
		{target: "/ws/*", keys: []string{"*"}},
		{target: "/*", keys: []string{"*"}},
		{target: "/ws/car-1", keys: []string{"car-1"}},
		{target: "/car-1", keys: []string{"car-1"}},
		{target: "/ws/a/b", keys: []string{"a/b"}},
		{target: "/wsx", keys: []string{"wsx"}},
		{target: "/ws?key=a&key=b", keys: []string{"a", "b"}},
		{target: "/ws/a?key=b-*", keys: []string{"a", "b-*"}},
		{target: "/ws?key=car-%3F", keys: []string{"car-?"}},
		{target: "/ws/sp%20ace", keys: []string{"sp ace"}},
		{target: "/ws?envelope=true", all: true, shape: message.ShapeEnvelope},
		{target: "/ws?envelope=1", all: true, shape: message.ShapeEnvelope},
		{target: "/ws?envelope=yes", all: true, shape: message.ShapeEnvelope}, // as ENVELOPE=yes
		{target: "/ws?envelope=No", envelope: true, all: true},
		{target: "/ws?envelope=false", envelope: true, all: true},
		{target: "/ws", envelope: true, all: true, shape: message.ShapeEnvelope},
		{target: "/ws?envelope=false&envelope=true", all: true, shape: message.ShapeEnvelope},
		{target: "/ws?token=x&other=y", all: true},
		{target: "/ws?envelope=maybe", err: `envelope="maybe" is not a boolean`},
		{target: "/ws?key=", err: "empty key= parameter"},
		{target: "/ws?key=a&key=", err: "empty key= parameter"},
		{target: "/ws?max_rate=1", all: true, rate: 1},
		{target: "/ws?max_rate=0.1", all: true, rate: 0.1},
		{target: "/ws?max_rate=1000", all: true, rate: 1000},
		{target: "/ws/a?max_rate=2.5&envelope=1", keys: []string{"a"}, shape: message.ShapeEnvelope, rate: 2.5},
		{target: "/ws?max_rate=5&max_rate=7", all: true, rate: 7},
		{target: "/ws?max_rate=0", err: `max_rate="0" is not a number from 0.1 to 1000`},
		{target: "/ws?max_rate=0.09", err: `max_rate="0.09" is not a number from 0.1 to 1000`},
		{target: "/ws?max_rate=1001", err: `max_rate="1001" is not a number from 0.1 to 1000`},
		{target: "/ws?max_rate=NaN", err: `max_rate="NaN" is not a number`},
		{target: "/ws?max_rate=Inf", err: `max_rate="Inf" is not a number`},
		{target: "/ws?max_rate=fast", err: `max_rate="fast" is not a number`},
		{target: "/ws?max_rate=", err: `max_rate="" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			u, err := url.ParseRequestURI(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := server.ParseSubscription(u.Path, u.Query(), tt.envelope)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sub.All != tt.all || !slices.Equal(sub.Keys, tt.keys) || sub.Shape != tt.shape || sub.MaxRate != tt.rate {
				t.Errorf("got all=%v keys=%q shape=%v rate=%v, want all=%v keys=%q shape=%v rate=%v",
					sub.All, sub.Keys, sub.Shape, sub.MaxRate, tt.all, tt.keys, tt.shape, tt.rate)
			}
		})
	}
}

// authorizer lets in requests whose token is "good".
type authorizer struct{}

func (authorizer) Authorize(r *http.Request, _ auth.Ambient) (auth.Principal, error) {
	if r.URL.Query().Get("token") == "good" {
		return auth.Principal{ID: "test", Grant: auth.Grant{All: true}}, nil
	}
	return auth.Principal{}, &auth.Error{Reason: auth.ReasonUnknownKey}
}

func (authorizer) Refused(auth.Reason) {}

type fixture struct {
	hub   *hub.Hub
	srv   *server.Server
	url   string // ws://host
	log   *e2etest.LogBuffer
	ready atomic.Bool
}

// newServer serves a Server over a real hub and poller on a loopback port.
func newServer(t *testing.T, cfg server.Config) *fixture {
	t.Helper()
	f := &fixture{log: &e2etest.LogBuffer{}}
	f.log.DumpOnFailure(t, "server")
	logger := f.log.Logger(slog.LevelDebug)
	f.hub = hub.New(hub.Config{Logger: logger, PingInterval: -1})
	p, err := netpoll.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = logger
	if cfg.Readiness == nil {
		cfg.Readiness = func() []ready.Condition {
			if f.ready.Load() {
				return nil
			}
			return []ready.Condition{{Reason: ready.BrokerUnreachable, Detail: "no Kafka broker answers: tried k:1: refused"}}
		}
	}
	f.srv = server.New(cfg, f.hub, p)
	ts := httptest.NewServer(f.srv)
	t.Cleanup(func() {
		ts.Close()
		// Not t.Context: it has ended when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), e2etest.Wait)
		defer cancel()
		if err := f.hub.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		p.Close()
	})
	f.url = "ws" + strings.TrimPrefix(ts.URL, "http")
	return f
}

func (f *fixture) publish(key string, payload string) {
	m := &message.Message{Key: []byte(key)}
	m.Frames[message.ShapePlain] = wsframe.Text([]byte(payload))
	m.Frames[message.ShapeEnvelope] = wsframe.Text([]byte(`{"env":` + payload + `}`))
	f.hub.Publish([]*message.Message{m})
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHTTP(t *testing.T) {
	f := newServer(t, server.Config{Stats: func() any { return map[string]int{"n": 1} }})
	base := "http" + strings.TrimPrefix(f.url, "ws")
	for _, path := range []string{"/ws", "/ws/x", "/x", "/"} {
		status, body := get(t, base+path)
		if status != http.StatusUpgradeRequired || !strings.Contains(body, "WebSocket") {
			t.Errorf("GET %s = %d %q, want 426 mentioning WebSocket", path, status, body)
		}
	}
	if status, body := get(t, base+"/healthz"); status != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", status, body)
	}
	if status, _ := get(t, base+"/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz not ready = %d, want 503", status)
	}
	f.ready.Store(true)
	if status, _ := get(t, base+"/readyz"); status != 200 {
		t.Errorf("/readyz ready = %d, want 200", status)
	}
	if status, body := get(t, base+"/stats"); status != 200 || body != "{\"n\":1}\n" {
		t.Errorf("/stats = %d %q", status, body)
	}
	for _, target := range []string{"/ws?envelope=maybe", "/ws?key=", "/ws?max_rate=5000"} {
		ctx, cancel := e2etest.Context(t)
		_, err := e2etest.Dial(ctx, f.url+target)
		cancel()
		var de *e2etest.DialError
		if !errors.As(err, &de) || de.Status != http.StatusBadRequest {
			t.Errorf("dial %s: %v, want 400", target, err)
		}
	}
}

func TestDelivery(t *testing.T) {
	f := newServer(t, server.Config{Envelope: true, SocketSendBuffer: 8 << 10})
	env := e2etest.Connect(t, f.url+"/ws")
	plain := e2etest.Connect(t, f.url+"/ws/k?envelope=false")
	f.publish("other", `1`)
	f.publish("k", `2`)
	if got := env.NextN(t, 2); string(got[0]) != `{"env":1}` || string(got[1]) != `{"env":2}` {
		t.Errorf("envelope client got %q", got)
	}
	if got := plain.Next(t); string(got) != `2` {
		t.Errorf("plain client got %s", got)
	}
	plain.ExpectQuiet(t)
}

func TestAuthRejects(t *testing.T) {
	f := newServer(t, server.Config{Auth: authorizer{}})
	good := e2etest.Connect(t, f.url+"/ws?token=good")
	bad := e2etest.Connect(t, f.url+"/ws?token=bad", e2etest.NoSync())
	f.publish("k", `1`)
	if got := good.Next(t); string(got) != "1" {
		t.Errorf("got %s", got)
	}
	bad.ExpectClose(t, 1008, "credential not accepted")
	if l := f.log.Lines("client rejected"); len(l) != 1 || !strings.Contains(l[0], "remote="+bad.LocalAddr()) || strings.Contains(l[0], "bad") {
		t.Errorf("rejection log lines: %q", l)
	}
}

// TestBytesAfterHandshake sends a ping in the same packet as the handshake
// request: the server reads it with the request and must still answer it.
func TestBytesAfterHandshake(t *testing.T) {
	f := newServer(t, server.Config{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), e2etest.MaskedFrame(true, ws.OpPing, []byte("early"))...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h, err := ws.ReadHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, min(h.Length, 125))
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatal(err)
	}
	if h.OpCode != ws.OpPong || !bytes.Equal(payload, []byte("early")) {
		t.Errorf("got %v %q, want the pong", h.OpCode, payload)
	}
}

// TestProtocolErrorCloses: a broken frame closes the client with 1002,
// counted under protocol_error.
func TestProtocolErrorCloses(t *testing.T) {
	f := newServer(t, server.Config{MaxClientMessage: 16})
	c := e2etest.Connect(t, f.url+"/ws")
	if err := c.WriteRaw(e2etest.MaskedFrame(true, ws.OpText, make([]byte, 17))); err != nil {
		t.Fatal(err)
	}
	c.ExpectClose(t, 1009, "message too big")
	e2etest.Eventually(t, "the close counted", func() bool { return f.hub.Stats().Closes[hub.ReasonMessageTooBig] == 1 })
}

// TestFailedHandshakeClosesConnection: a request that looks like an
// upgrade but fails the handshake (here a bad Sec-WebSocket-Key) gets an
// error answer and then the end of the connection, with or without
// credentials; the hijacked connection must not be left open.
func TestFailedHandshakeClosesConnection(t *testing.T) {
	tests := []struct {
		name, target string
		cfg          server.Config
	}{
		{"no auth", "/ws", server.Config{}},
		{"authorized", "/ws?token=good", server.Config{Auth: authorizer{}}},
		{"unauthorized", "/ws?token=bad", server.Config{Auth: authorizer{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newServer(t, tt.cfg)
			conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "ws://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(e2etest.Wait))
			req := "GET " + tt.target + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"
			if _, err := conn.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			// What follows the answer's headers (its body, if any) must end
			// with the connection, not hang until the deadline.
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Fatalf("after the answer: %v, want the connection closed", err)
			}
			e2etest.Eventually(t, "the client forgotten", func() bool { return f.hub.Stats().Clients == 0 })
		})
	}
}

// TestRefusalsFitACloseFrame: a close reason has at most 123 bytes.
func TestRefusalsFitACloseFrame(t *testing.T) {
	for _, r := range []string{wsframe.ReasonNoCredential, wsframe.ReasonNotAccepted} {
		if len(r) > 123 {
			t.Errorf("%q is %d bytes, more than a close frame holds", r, len(r))
		}
	}
}
