package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
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

// TestConnGuard: at its bound the guard closes the oldest connection that
// is not being served, never one in a handler, and refuses a newcomer when
// all are being served.
func TestConnGuard(t *testing.T) {
	g := server.NewConnGuard(2)
	release := make(chan struct{})
	inHandler := make(chan struct{}, 4)
	srv := &http.Server{
		Handler: g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
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

	slow := dial()
	if _, err := io.WriteString(slow, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-inHandler
	silent := dial() // never sends a request
	e2etest.Eventually(t, "two connections in the guard", func() bool { return g.Open() == 2 })

	probe := dial()
	if !closedByServer(t, silent) {
		t.Fatal("the silent connection was not evicted for the newcomer")
	}
	if _, err := io.WriteString(probe, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(probe), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("probe: %v %v", resp, err)
	}
	resp.Body.Close()

	// The probe's connection is idle now; the slow one is being served.
	// Another newcomer evicts the probe, not the slow request.
	next := dial()
	if !closedByServer(t, probe) {
		t.Fatal("the idle connection was not evicted")
	}
	if _, err := io.WriteString(next, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-inHandler
	// Both are in handlers: a newcomer is refused.
	if !closedByServer(t, dial()) {
		t.Fatal("a newcomer was let in beyond the bound while every connection was serving")
	}
	if g.Evicted() != 3 {
		t.Errorf("evicted %d, want 3", g.Evicted())
	}
	_ = slow.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := slow.Read(make([]byte, 1)); err == nil || !err.(net.Error).Timeout() {
		t.Errorf("the connection being served was closed: %v", err)
	}
}
