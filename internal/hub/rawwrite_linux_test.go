//go:build linux

package hub

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// With Conflate, a client whose socket was full gets a socket that holds
// at most slowNotSentBytes not yet sent (TCP_NOTSENT_LOWAT), so that
// what it cannot read waits in the server, where it is conflated; a
// client whose socket never filled, and every client without Conflate,
// keeps the kernel's default.
func TestConflateLimitsNotSent(t *testing.T) {
	for _, tt := range []struct {
		conflate, fill bool
		limited        bool
	}{
		{conflate: true, fill: true, limited: true},
		{conflate: true, fill: false},
		{conflate: false, fill: true},
	} {
		t.Run(fmt.Sprintf("conflate=%v,full=%v", tt.conflate, tt.fill), func(t *testing.T) {
			h := New(Config{Conflate: tt.conflate, WriteTimeout: time.Hour, PingInterval: -1, MaxQueueBytes: 64 << 20})
			runHub(t, h)
			srv, cli := tcpPair(t)
			_ = srv.SetWriteBuffer(4096)
			_ = cli.SetReadBuffer(4096)
			want := notSentLowat(t, srv.SyscallConn) // the kernel's default
			if tt.limited {
				want = slowNotSentBytes
			}
			c := h.AddClient(srv, ClientOptions{Sub: Subscription{All: true}})
			n := 1
			if tt.fill {
				n = 1000 // 1 MB: more than the socket buffers, never read
			}
			var msgs []*message.Message
			for i := range n {
				m := ratedMsg(fmt.Sprintf("k%d", i), i)
				m.Frames[message.ShapePlain] = wsframe.Text([]byte(strings.Repeat("x", 1000)))
				msgs = append(msgs, m)
			}
			h.Publish(msgs)
			if !spinUntil(func() bool { return h.Stats().Writes > 0 && (!tt.fill || c.isSlow()) }) {
				t.Fatalf("stats %+v: the socket never filled", h.Stats())
			}
			if got := notSentLowat(t, srv.SyscallConn); got != want {
				t.Fatalf("TCP_NOTSENT_LOWAT %d, want %d", got, want)
			}
		})
	}
}

// isSlow reports whether the client's socket was once full.
func (c *Client) isSlow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slowWrites
}

func notSentLowat(t *testing.T, rc func() (syscall.RawConn, error)) int {
	t.Helper()
	raw, err := rc()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return v
}
