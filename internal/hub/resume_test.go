package hub

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// rec returns a message of partition 0 at offset off, one row.
func rec(off int64) *message.Message {
	p := strconv.FormatInt(off, 10)
	return &message.Message{Offset: off, Rows: 1, Key: []byte("k"),
		Frames: [message.NumShapes][]byte{wsframe.Text([]byte(p)), wsframe.Text([]byte(p))}}
}

// A parked client gets what is pushed but no live message; once joined,
// it gets the live messages behind what was pushed.
func TestParkPushJoin(t *testing.T) {
	h := New(Config{PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	srv, cli := net.Pipe()
	t.Cleanup(func() { cli.Close() })
	p := &peer{conn: cli, closed: make(chan struct{})}
	p.client = h.AddClient(srv, ClientOptions{Sub: Subscription{All: true}, OnClosed: func() { close(p.closed) }, Park: true})
	c := p.client

	h.Publish([]*message.Message{rec(5)}) // parked: not queued
	if !c.Push([]*message.Message{rec(1), rec(2)}) {
		t.Fatal("Push refused")
	}
	if got := p.texts(t, 2); got[0] != "1" || got[1] != "2" {
		t.Fatalf("pushed: %q", got)
	}
	c.Push([]*message.Message{rec(3)})
	if !c.Join() {
		t.Fatal("Join refused")
	}
	h.Publish([]*message.Message{rec(4)})
	if got := p.texts(t, 2); got[0] != "3" || got[1] != "4" {
		t.Fatalf("after join: %q", got)
	}
	if q, ok := c.WaitBacklog(t.Context(), 0); q != 0 || !ok {
		t.Fatalf("backlog %d, ok %v", q, ok)
	}
}

// WaitBacklog returns once the writer has taken the backlog down to the
// limit, and with false once the client is closing.
func TestWaitBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
		c := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true}, Park: true})
		c.Push([]*message.Message{rec(1), rec(2)})
		done := make(chan int)
		go func() {
			q, ok := c.WaitBacklog(t.Context(), 0)
			if !ok {
				q = -1
			}
			done <- q
		}()
		synctest.Wait()
		select {
		case q := <-done:
			t.Fatalf("returned %d with two messages queued and no connection", q)
		default:
		}
		conn := newRecConn()
		c.Attach(conn)
		if q := <-done; q != 0 {
			t.Fatalf("returned %d, want 0 once written", q)
		}
		d := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true}, Park: true})
		d.Push([]*message.Message{rec(3)})
		go func() {
			_, ok := d.WaitBacklog(t.Context(), 0)
			done <- map[bool]int{true: 1, false: -1}[ok]
		}()
		synctest.Wait()
		d.Close(wsframe.CloseInternalError, wsframe.ReasonCatchUpFailed, ReasonCatchUp)
		if got := <-done; got != -1 {
			t.Fatalf("WaitBacklog on a closing client: %d, want false", got)
		}
	})
}

// A notice (no key, Rows 0) goes to every client with a frame for it,
// whatever its subscription.
func TestNoticeToEveryone(t *testing.T) {
	h := New(Config{PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	n := &message.Message{Partition: -1}
	n.Frames[message.ShapeEnvelope] = wsframe.Text([]byte(`{"notice":"reset"}`))
	for _, sub := range []Subscription{{All: true}, {Keys: []string{"k"}}, {Keys: []string{"k*"}}} {
		sub.Shape = message.ShapeEnvelope
		p := addPeer(t, h, sub)
		h.Publish([]*message.Message{n, rec(1)})
		if got := p.texts(t, 2); got[0] != `{"notice":"reset"}` || got[1] != "1" {
			t.Fatalf("%+v: got %q", sub, got)
		}
	}
}

// SSE clients get the heartbeat comment from Heartbeat, WebSocket clients
// do not; SSE clients are never dropped for silence.
func TestSSEHeartbeat(t *testing.T) {
	h := New(Config{PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	srv, cli := net.Pipe()
	t.Cleanup(func() { cli.Close() })
	h.AddClient(srv, ClientOptions{Sub: Subscription{All: true, Shape: message.ShapeSSEPlain}, Transport: SSE{}})
	ws := addPeer(t, h, Subscription{All: true})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = h.Heartbeat(ctx, 5*time.Millisecond, SSE{}) }()
	_ = cli.SetReadDeadline(time.Now().Add(testWait))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(cli, buf); err != nil || string(buf) != ":\n\n" {
		t.Fatalf("read %q, %v; want the heartbeat", buf, err)
	}
	cancel()
	h.Publish([]*message.Message{rec(1)}) // the WebSocket client's first frame is data, not a ping
	if got := ws.texts(t, 1); got[0] != "1" {
		t.Fatalf("websocket client got %q", got)
	}
}

// A parked client closed as too slow (what was pushed is not counted:
// the catch-up paces itself) gets its close frame at once.
func TestParkedClientClosedAtOnce(t *testing.T) {
	h := New(Config{PingInterval: -1, MaxQueueBytes: 1000, Logger: slog.New(slog.DiscardHandler)})
	srv, cli := net.Pipe()
	t.Cleanup(func() { cli.Close() })
	c := h.AddClient(srv, ClientOptions{Sub: Subscription{All: true}, Park: true})
	c.Close(wsframe.CloseInternalError, wsframe.ReasonCatchUpFailed, ReasonCatchUp)
	_ = cli.SetReadDeadline(time.Now().Add(testWait))
	f, err := readFrame(cli)
	if err != nil || f.op != wsframe.OpClose || len(f.payload) < 2 || uint16(f.payload[0])<<8|uint16(f.payload[1]) != wsframe.CloseInternalError {
		t.Fatalf("read %+v, %v; want a 1011 close frame", f, err)
	}
	if c.Push([]*message.Message{rec(1)}) || c.Join() {
		t.Fatal("a closing client took a Push or a Join")
	}
}
