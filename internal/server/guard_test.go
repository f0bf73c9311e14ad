package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/server"
)

// closedByServer reports whether the server closed c: a read ends with
// EOF (or a reset) rather than the deadline.
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(e2etest.Wait))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// TestConnGuard: at its bound the guard lets the newcomer in and closes,
// in order, an idle or silent connection past its grace, a request
// stalled in a handler past its grace, the oldest new connection; so two
// newcomers arriving together do not evict each other, and a request in a
// handler outlives a flood of new silent connections. A connection
// carrying a stream is neither counted nor closed.
func TestConnGuard(t *testing.T) {
	g := server.NewConnGuard(2)
	var clock atomic.Int64 // nanoseconds
	server.SetGuardClock(g, func() time.Time { return time.Unix(0, clock.Load()) })
	pass := func() { clock.Add(int64(2 * server.Grace)) }
	release := make(chan struct{})
	inHandler := make(chan struct{}, 4)
	srv := &http.Server{
		Handler: g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/slow":
				inHandler <- struct{}{}
				<-release
			case "/stream":
				defer server.GuardStream(r)()
				w.WriteHeader(http.StatusOK)
				_ = http.NewResponseController(w).Flush()
				inHandler <- struct{}{}
				<-release
			}
			_, _ = io.WriteString(w, "ok")
		})),
		ConnState:   g.ConnState,
		ConnContext: g.ConnContext,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { close(release); srv.Close() })
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	open := func(n int) {
		t.Helper()
		e2etest.Eventually(t, fmt.Sprintf("%d connections in the guard", n), func() bool { return g.Open() == n })
	}
	send := func(c net.Conn, path string) {
		t.Helper()
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	get := func(c net.Conn, path string) {
		t.Helper()
		send(c, path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	evicted := func(c net.Conn, what string) {
		t.Helper()
		if !closedByServer(t, c) {
			t.Fatalf("%s was not evicted", what)
		}
	}

	silent := dial() // never sends a request
	open(1)
	pass()
	slow := dial()
	send(slow, "/slow")
	<-inHandler
	probe := dial()
	evicted(silent, "the silent connection past its grace")
	get(probe, "/healthz")
	next := dial()
	evicted(probe, "the idle connection (before a request in a handler)")
	next.Close()
	open(1)

	// Two newcomers at once: the second evicts the request stalled in its
	// handler, not the first newcomer, and both are answered.
	pass()
	a, b := dial(), dial()
	evicted(slow, "the request stalled in its handler")
	get(a, "/healthz")
	get(b, "/readyz")

	// A stream is out of the count and out of reach.
	stream := dial()
	evicted(a, "the idle connection")
	send(stream, "/stream")
	<-inHandler
	open(2)
	d1 := dial()
	open(3) // b, d1 and the stream
	d2 := dial()
	evicted(b, "the idle connection")

	// A request in its handler within its grace outlives new connections
	// that send nothing: the oldest of them goes.
	send(d2, "/slow")
	<-inHandler
	dial()
	evicted(d1, "the oldest new connection")
	_ = d2.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := d2.Read(make([]byte, 1)); err == nil || !err.(net.Error).Timeout() {
		t.Errorf("the request in its handler was closed: %v", err)
	}
	_ = stream.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := io.ReadAll(stream); err == nil || !err.(net.Error).Timeout() {
		t.Errorf("the connection carrying a stream was closed: %v", err)
	}
	if g.Evicted() != 6 {
		t.Errorf("evicted %d, want 6", g.Evicted())
	}
}

// addrConn is a connection from a given address that records its close;
// only RemoteAddr and Close are called by the guard.
type addrConn struct {
	net.Conn
	remote net.Addr
	closed atomic.Bool
}

func (c *addrConn) RemoteAddr() net.Addr { return c.remote }
func (c *addrConn) Close() error         { c.closed.Store(true); return nil }

func tcpAddr(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

// TestConnGuardWeighsAddresses: at its bound the guard makes room at the
// address holding the most connections (an IPv6 address by its /64), so
// that one address opening as many connections as the guard holds, faster
// than the grace, does not close a probe from another address whose
// request has not been read yet. Connections from many addresses, one
// each, are weighed alike and evicted in the usual order.
func TestConnGuardWeighsAddresses(t *testing.T) {
	const max = 64
	for _, tc := range []struct {
		name  string
		probe string
		flood func(i int) string // the address of the i-th flooding connection
	}{
		{"ipv4", "192.0.2.1:4711", func(i int) string { return fmt.Sprintf("198.51.100.7:%d", 1000+i) }},
		{"ipv6 by /64", "[2001:db8::1]:4711", func(i int) string { return fmt.Sprintf("[2001:db8:0:1::%x]:1000", i+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := server.NewConnGuard(max)
			var clock atomic.Int64
			server.SetGuardClock(g, func() time.Time { return time.Unix(0, clock.Load()) })
			probe := &addrConn{remote: tcpAddr(tc.probe)}
			g.ConnContext(context.Background(), probe)
			flood := make([]*addrConn, max)
			for i := range flood {
				clock.Add(int64(10 * time.Millisecond))
				flood[i] = &addrConn{remote: tcpAddr(tc.flood(i))}
				g.ConnContext(context.Background(), flood[i])
			}
			if probe.closed.Load() {
				t.Fatal("the probe was closed by a flood from one address")
			}
			if !flood[0].closed.Load() || g.Evicted() != 1 || g.Open() != max {
				t.Errorf("first flooding connection closed %v, evicted %d, open %d; want true, 1, %d",
					flood[0].closed.Load(), g.Evicted(), g.Open(), max)
			}
		})
	}

	// One connection per address: they weigh alike, and the usual order
	// decides: an idle connection before the oldest new one.
	g := server.NewConnGuard(3)
	conns := make([]*addrConn, 3)
	ctxs := make([]context.Context, 3)
	for i := range conns {
		conns[i] = &addrConn{remote: tcpAddr(fmt.Sprintf("192.0.2.%d:80", i+1))}
		ctxs[i] = g.ConnContext(context.Background(), conns[i])
	}
	r := httptest.NewRequest("GET", "/healthz", nil).WithContext(ctxs[1])
	g.Handler(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), r)
	g.ConnContext(context.Background(), &addrConn{remote: tcpAddr("192.0.2.9:80")})
	if conns[0].closed.Load() || !conns[1].closed.Load() || conns[2].closed.Load() {
		t.Errorf("closed %v %v %v; want the idle one only", conns[0].closed.Load(), conns[1].closed.Load(), conns[2].closed.Load())
	}
}
