package hub

import (
	"bufio"
	"bytes"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// TestWritesCounted: Stats.Writes counts every write to a raw TCP socket,
// whichever path makes it: a client's own goroutine while the pool is not
// running, and the blocking rest of a batch the socket took only part of.
func TestWritesCounted(t *testing.T) {
	tests := []struct {
		name    string
		pool    bool
		size    int    // payload bytes of the one message
		writes  uint64 // exactly
		blocked uint64
	}{
		// Without the pool a raw socket is written by writeLoop: one
		// blocking writev.
		{"own goroutine", false, 100, 1, 0},
		// The pool's non-blocking writev takes part of 4 MiB, the rest
		// goes out in one blocking write from finishBlocked.
		{"pool, then the rest blocking", true, 4 << 20, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Config{PingInterval: -1, MaxQueueBytes: 64 << 20})
			if tt.pool {
				runHub(t, h)
			}
			srv, cli := tcpPair(t)
			_ = srv.SetWriteBuffer(32 << 10)
			_ = cli.SetReadBuffer(64 << 10)
			closed := make(chan struct{})
			c := h.AddClient(srv, ClientOptions{Sub: Subscription{All: true}, OnClosed: func() { close(closed) }})
			if c.raw == nil {
				t.Fatal("a TCP client has no raw connection")
			}
			payload := bytes.Repeat([]byte("x"), tt.size)
			h.Publish([]*message.Message{{Frames: [message.NumShapes][]byte{wsframe.Text(payload)}}})
			if tt.blocked > 0 && !spinUntil(func() bool { return h.Stats().BlockedWrites > 0 }) {
				t.Fatalf("the socket took the whole batch: the test did not cover the blocking rest; stats %+v", h.Stats())
			}
			_ = cli.SetReadDeadline(time.Now().Add(testWait))
			f, err := readFrame(bufio.NewReader(cli))
			if err != nil || !bytes.Equal(f.payload, payload) {
				t.Fatalf("read: %v, %d bytes", err, len(f.payload))
			}
			frameLen := uint64(wsframe.HeaderLen(tt.size) + tt.size)
			if !spinUntil(func() bool { return h.Stats().Written == 1 }) {
				t.Fatalf("the frame was never counted as written; stats %+v", h.Stats())
			}
			if st := h.Stats(); st.Writes != tt.writes || st.BlockedWrites != tt.blocked || st.Bytes != frameLen {
				t.Errorf("writes %d, blocked %d, bytes %d; want %d, %d, %d", st.Writes, st.BlockedWrites, st.Bytes, tt.writes, tt.blocked, frameLen)
			}
			c.Abort(ReasonClientClosed)
			<-closed
		})
	}
}
