package server

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// TestDeadlineHijacker: the connection a hijack through deadlineHijacker
// returns has the write deadline (net/http clears the deadlines of a
// connection it lets go of), so the WebSocket handshake's answer cannot
// wait for ever on a peer that does not read.
func TestDeadlineHijacker(t *testing.T) {
	errs := make(chan error, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(deadlineHijacker{w, time.Now().Add(-time.Second)}).Hijack()
		if err != nil {
			errs <- err
			return
		}
		defer conn.Close()
		_, err = conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"))
		errs <- err
	}))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err == nil {
		resp.Body.Close()
	}
	if err := <-errs; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write on the hijacked connection: %v, want the deadline exceeded", err)
	}
}

// deadlineConn records the write deadline set on it.
type deadlineConn struct {
	net.Conn
	deadline time.Time
	set      bool
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error { c.deadline, c.set = t, true; return nil }

// TestHandOverDeadline: a TLS client's connection keeps a write deadline
// WriteTimeout from its handshake when the hub takes it, so that a write
// crypto/tls makes from within a read before the hub's first (an alert, a
// key update's answer) cannot wait for ever; a plain socket keeps none,
// since its writer writes without waiting.
func TestHandOverDeadline(t *testing.T) {
	s := &Server{cfg: Config{WriteTimeout: time.Hour}}
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"tls", true}, {"plain", false}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &deadlineConn{}
			var conn net.Conn = rec
			if tc.tls {
				conn = tls.Server(rec, &tls.Config{})
			}
			before := time.Now()
			s.handOver(conn)
			switch {
			case !rec.set:
				t.Error("no write deadline set")
			case tc.tls && rec.deadline.Before(before.Add(time.Hour)):
				t.Errorf("deadline %v, want WriteTimeout from now", rec.deadline)
			case !tc.tls && !rec.deadline.IsZero():
				t.Errorf("deadline %v on a plain socket, want none", rec.deadline)
			}
		})
	}
}
