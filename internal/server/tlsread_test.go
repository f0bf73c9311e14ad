package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/netpoll"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// trickle sends every write one byte per TCP segment, so that the server's
// poller sees TLS records cut anywhere.
type trickle struct{ net.Conn }

func (c trickle) Write(b []byte) (int, error) {
	for i := range b {
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(b), nil
}

// TestTLSReadFromPoller serves TLS through TLSListener: idle TLS clients
// cost no goroutine, pings cut into one-byte segments are answered, and
// the close handshake completes, all watched by the epoll loop.
// newTLSPollerServer serves srv's routes over TLS (HTTP/1.1) through
// TLSListener; it returns the hub and the address.
func newTLSPollerServer(t *testing.T) (*hub.Hub, string, *e2etest.CA) {
	t.Helper()
	ca := e2etest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "srv")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	log := &e2etest.LogBuffer{}
	log.DumpOnFailure(t, "server")
	h := hub.New(hub.Config{Logger: log.Logger(slog.LevelDebug), PingInterval: -1})
	p, err := netpoll.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Logger: log.Logger(slog.LevelDebug)}, h, p)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go func() {
		_ = hs.Serve(tls.NewListener(server.TLSListener(ln), &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}))
	}()
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), e2etest.Wait)
		defer cancel()
		_ = h.Shutdown(ctx)
		p.Close()
	})
	return h, ln.Addr().String(), ca
}

func TestTLSReadFromPoller(t *testing.T) {
	h, addr, ca := newTLSPollerServer(t)
	url := "wss://" + addr + "/ws"
	tlsOpt := e2etest.WithTLS(&tls.Config{RootCAs: ca.Pool()})

	before := runtime.NumGoroutine()
	const idle = 40
	for range idle {
		e2etest.Connect(t, url, tlsOpt) // Connect waits for a pong: read by the poller
	}
	grown := runtime.NumGoroutine() - before
	t.Logf("%d goroutines more for %d idle TLS clients", grown, idle)
	if grown > idle/4 {
		t.Errorf("%d goroutines more for %d idle TLS clients", grown, idle)
	}

	c := e2etest.Connect(t, url, tlsOpt, e2etest.WithConnWrapper(func(c net.Conn) net.Conn { return trickle{c} }))
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	for i := range 3 {
		payload := []byte{'p', byte('0' + i)}
		if err := c.WriteFrame(ws.OpPing, payload); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := c.ReadFrame(ctx)
			if err != nil {
				t.Fatalf("pong %d: %v", i, err)
			}
			if f.Op == ws.OpPong && string(f.Payload) == string(payload) {
				break
			}
		}
	}
	m := &message.Message{Key: []byte("k")}
	m.Frames[message.ShapePlain] = wsframe.Text([]byte(`1`))
	h.Publish([]*message.Message{m})
	if got := c.Next(t); string(got) != "1" {
		t.Errorf("got %s", got)
	}
	if err := c.WriteFrame(ws.OpClose, wsframe.Close(1000, "bye")[2:]); err != nil {
		t.Fatal(err)
	}
	c.ExpectClose(t, 1000, "")
	e2etest.Eventually(t, "the client gone", func() bool { return h.Stats().Clients == idle })
}

// TestSSEOverTLSFromPoller: SSE clients over TLS (HTTP/1.1) are watched
// by the epoll loop too, so idle ones cost no goroutine, and a client
// hanging up is seen and drops it.
func TestSSEOverTLSFromPoller(t *testing.T) {
	h, addr, ca := newTLSPollerServer(t)
	dial := func() *tls.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET /sse/k HTTP/1.1\r\nHost: srv\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(e2etest.Wait))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /sse/k: %v %v", resp, err)
		}
		return c
	}

	before := runtime.NumGoroutine()
	const idle = 40
	for range idle {
		dial()
	}
	e2etest.Eventually(t, "the SSE clients added", func() bool { return h.Stats().Clients == idle })
	grown := runtime.NumGoroutine() - before
	t.Logf("%d goroutines more for %d idle SSE clients over TLS", grown, idle)
	if grown > idle/4 {
		t.Errorf("%d goroutines more for %d idle SSE clients over TLS", grown, idle)
	}

	c := dial()
	e2etest.Eventually(t, "one more SSE client", func() bool { return h.Stats().Clients == idle+1 })
	c.Close()
	e2etest.Eventually(t, "the client that hung up gone", func() bool { return h.Stats().Clients == idle })
}
