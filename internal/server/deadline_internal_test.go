package server

import (
	"errors"
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
