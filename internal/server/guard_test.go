package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
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

// TestConnGuard: at its bound the guard closes the least recently active
// connection (a silent one, an idle one, one whose request has been in a
// handler longest) but spares a fresh one that has not sent its request
// yet, so that a newcomer is always let in and two arriving together do
// not evict each other; a connection carrying a stream is neither counted
// nor closed.
func TestConnGuard(t *testing.T) {
	g := server.NewConnGuard(2)
	var clock atomic.Int64 // seconds
	server.SetGuardClock(g, func() time.Time { return time.Unix(clock.Load(), 0) })
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
				http.NewResponseController(w).Flush()
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
	evicted := func(want uint64) {
		t.Helper()
		e2etest.Eventually(t, fmt.Sprintf("%d evicted", want), func() bool { return g.Evicted() == want })
	}
	get := func(c net.Conn, path string) {
		t.Helper()
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}

	silent := dial() // never sends a request
	e2etest.Eventually(t, "the silent connection in the guard", func() bool { return g.Open() == 1 })
	clock.Add(2 * int64(server.FreshFor/time.Second)) // silent no longer fresh
	slow := dial()
	if _, err := io.WriteString(slow, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-inHandler // active since after the silent one's accept

	probe := dial()
	if !closedByServer(t, silent) {
		t.Fatal("the silent connection was not evicted for the newcomer")
	}
	get(probe, "/healthz") // active now: the request in the handler is older

	next := dial()
	if !closedByServer(t, slow) {
		t.Fatal("the connection whose request was in a handler longest was not evicted")
	}
	evicted(2)

	// Two newcomers at once evict the two older connections, not each
	// other, and are both answered: next, fresh, is spared while probe
	// can go.
	a, b := dial(), dial()
	if !closedByServer(t, probe) || !closedByServer(t, next) {
		t.Fatal("two newcomers did not evict the two older connections")
	}
	get(a, "/healthz")
	get(b, "/readyz")
	evicted(4)

	// A stream is out of the count and out of reach: its own arrival
	// evicts a, then the guard holds b and room for one more.
	stream := dial()
	if _, err := io.WriteString(stream, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-inHandler
	evicted(5)
	if g.Open() != 2 {
		t.Fatalf("%d connections in the guard, want b and the stream", g.Open())
	}
	for range 3 {
		dial()
	}
	evicted(7)
	_ = stream.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := io.ReadAll(stream); err == nil || !err.(net.Error).Timeout() {
		t.Errorf("the connection carrying a stream was closed: %v", err)
	}
}
