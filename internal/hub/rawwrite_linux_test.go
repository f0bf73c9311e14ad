//go:build linux

package hub

import (
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// With Conflate, a client's raw socket holds at most connNotSentBytes
// not yet sent (TCP_NOTSENT_LOWAT), whether it reads or not; while the
// client is conflated, slowNotSentBytes, so that what it cannot read
// waits in the server, where it is conflated; once it caught up,
// connNotSentBytes again. Without Conflate the kernel's default stays.
func TestConflateLimitsNotSent(t *testing.T) {
	for _, conflate := range []bool{false, true} {
		t.Run(fmt.Sprint("conflate=", conflate), func(t *testing.T) {
			h := New(Config{Conflate: conflate, WriteTimeout: time.Hour, PingInterval: -1, MaxQueueBytes: 1 << 20})
			srv, cli := tcpPair(t)
			_ = srv.SetWriteBuffer(4096)
			_ = cli.SetReadBuffer(4096)
			def := notSentLowat(t, srv.SyscallConn) // the kernel's default
			conn, slow, caughtUp := def, def, def
			if conflate {
				conn, slow, caughtUp = connNotSentBytes, slowNotSentBytes, connNotSentBytes
			}
			c := h.AddClient(srv, ClientOptions{Sub: Subscription{All: true}})
			if got := notSentLowat(t, srv.SyscallConn); got != conn {
				t.Fatalf("attached: TCP_NOTSENT_LOWAT %d, want %d", got, conn)
			}
			// Conflated on 100 KB of keys, not read: the writer's next
			// turn takes a piece of its pending set and limits the
			// socket, which soon holds all it may.
			c.mu.Lock()
			for i := range 100 {
				m := ratedMsg(fmt.Sprint("k", i), i)
				m.Frames[message.ShapePlain] = wsframe.Text([]byte(strings.Repeat("x", 1000)))
				switch {
				case !conflate:
					c.pushLocked(m, 1)
				case i == 0:
					c.conflateLocked(m)
				default:
					c.holdLocked(m)
				}
			}
			c.wakeLocked()
			c.mu.Unlock()
			if !spinUntil(func() bool { return notSentLowat(t, srv.SyscallConn) != conn || !conflate }) {
				t.Fatal("the socket was not limited")
			}
			if got := notSentLowat(t, srv.SyscallConn); got != slow {
				t.Fatalf("conflated: TCP_NOTSENT_LOWAT %d, want %d", got, slow)
			}
			go func() { _, _ = io.Copy(io.Discard, cli) }()
			if !spinUntil(func() bool { return notSentLowat(t, srv.SyscallConn) == caughtUp && !c.isConflating() }) {
				t.Fatalf("caught up: TCP_NOTSENT_LOWAT %d, want %d", notSentLowat(t, srv.SyscallConn), caughtUp)
			}
		})
	}
}

// isConflating reports whether the client is in conflated mode.
func (c *Client) isConflating() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest != nil && !c.latest.quiet
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
