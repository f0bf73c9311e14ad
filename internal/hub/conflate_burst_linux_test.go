//go:build linux

package hub

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// With Conflate, a client that reads at once but is sent one batch larger
// than its socket takes (a catch-up, a snapshot, a large fetch or a
// record of many rows) keeps its socket's limit of connNotSentBytes: only
// conflation lowers it (to slowNotSentBytes), not a full socket.
func TestConflateBurstKeepsNotSentLimit(t *testing.T) {
	h := New(Config{Conflate: true, WriteTimeout: time.Hour, PingInterval: -1, MaxQueueBytes: 64 << 20})
	runHub(t, h)
	srv, cli := tcpPair(t)
	_ = srv.SetWriteBuffer(128 << 10)               // SOCKET_SEND_BUFFER's default
	go func() { _, _ = io.Copy(io.Discard, cli) }() // reads at once, always
	h.AddClient(srv, ClientOptions{Sub: Subscription{All: true}})
	burst := func(n int) {
		var msgs []*message.Message
		for i := range n {
			m := ratedMsg(fmt.Sprintf("k%d", i), i)
			m.Frames[message.ShapePlain] = wsframe.Text([]byte(strings.Repeat("x", 1000)))
			msgs = append(msgs, m)
		}
		h.Publish(msgs)
	}
	burst(1000) // 1 MB in one Publish
	if !spinUntil(func() bool { return h.Stats().Written == 1000 }) {
		t.Fatal("not written")
	}
	w0 := h.Stats().Writes
	for range 20 { // steady traffic afterwards: 20 fetches of 100 KB
		burst(100)
	}
	if !spinUntil(func() bool { return h.Stats().Written == 3000 }) {
		t.Fatal("not written")
	}
	st := h.Stats()
	t.Logf("after the burst: %d writes (%d blocked in all) for 2,000 frames of 1 KB", st.Writes-w0, st.BlockedWrites)
	if got := notSentLowat(t, srv.SyscallConn); got != connNotSentBytes || h.Stats().Conflations != 0 {
		t.Fatalf("a client that reads at once: TCP_NOTSENT_LOWAT %d, want %d; %d conflations", got, connNotSentBytes, h.Stats().Conflations)
	}
}
