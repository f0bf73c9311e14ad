package hub

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// rec returns a message of partition 0 at offset off, one row.
func rec(off int64) *Message {
	p := strconv.FormatInt(off, 10)
	return &Message{Offset: off, Rows: 1, Key: []byte("k"),
		Frames: [NumShapes][]byte{wsframe.Text([]byte(p)), wsframe.Text([]byte(p))}}
}

// A parked client gets what is pushed but no live message; once held,
// live messages wait behind the last stretch; the release filters them,
// and the floor drops later live copies of what the catch-up delivered.
func TestParkHoldRelease(t *testing.T) {
	h := New(Config{PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	srv, cli := net.Pipe()
	t.Cleanup(func() { cli.Close() })
	p := &peer{conn: cli, closed: make(chan struct{})}
	p.client = h.AddClient(srv, ClientOptions{Sub: Subscription{All: true}, OnClosed: func() { close(p.closed) }, Park: true})
	c := p.client

	h.Publish([]*Message{rec(5)}) // parked: not queued
	if !c.Push([]*Message{rec(1), rec(2)}) {
		t.Fatal("Push refused")
	}
	if got := p.texts(t, 2); got[0] != "1" || got[1] != "2" {
		t.Fatalf("pushed: %q", got)
	}
	c.HoldLive()
	h.Publish([]*Message{rec(4), rec(5)}) // held
	// The last stretch holds 3 and 4; the held 4 is already there, 5 is not.
	var floor wsdest.Cursor
	for _, o := range []int64{1, 2, 3, 4} {
		floor.Advance(0, o, 0, 1)
	}
	fix := func(m *Message) *Message {
		if floor.Delivered(m.Partition, m.Offset, m.Row) {
			return nil
		}
		floor.Advance(m.Partition, m.Offset, m.Row, m.Rows)
		return m
	}
	c.ReleaseFunc([]*Message{rec(3), rec(4)}, fix, &floor)
	if got := p.texts(t, 3); got[0] != "3" || got[1] != "4" || got[2] != "5" {
		t.Fatalf("after release: %q", got)
	}
	// Published again (the history had it a moment before its Publish):
	// dropped by the floor; a new one goes through.
	h.Publish([]*Message{rec(5), rec(6)})
	if got := p.texts(t, 1); got[0] != "6" {
		t.Fatalf("live: %q", got)
	}
	if q, closing := c.Backlog(); q != 0 || closing {
		t.Fatalf("backlog %d, closing %v", q, closing)
	}
}

// SSE clients get the heartbeat comment from Heartbeat, WebSocket clients
// do not; SSE clients are never dropped for silence.
func TestSSEHeartbeat(t *testing.T) {
	h := New(Config{PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	srv, cli := net.Pipe()
	t.Cleanup(func() { cli.Close() })
	h.AddClient(srv, ClientOptions{Sub: Subscription{All: true, Shape: ShapeSSEPlain}, Transport: SSE{}})
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
	h.Publish([]*Message{rec(1)}) // the WebSocket client's first frame is data, not a ping
	if got := ws.texts(t, 1); got[0] != "1" {
		t.Fatalf("websocket client got %q", got)
	}
}

// A client closed while it holds the live stream (here: too slow, the
// held messages over the queue bound) gets its close frame at once, not
// when the catch-up would have released it, whether it subscribes to
// every key or to the record's.
func TestHeldClientClosedAtOnce(t *testing.T) {
	for name, sub := range map[string]Subscription{"all": {All: true}, "key": {Keys: []string{"k"}}} {
		t.Run(name, func(t *testing.T) {
			h := New(Config{PingInterval: -1, MaxQueueBytes: 1000, Logger: slog.New(slog.DiscardHandler)})
			srv, cli := net.Pipe()
			t.Cleanup(func() { cli.Close() })
			c := h.AddClient(srv, ClientOptions{Sub: sub, Park: true})
			c.HoldLive()
			big := func(off int64) *Message {
				m := rec(off)
				m.Frames[ShapePlain] = wsframe.Text(make([]byte, 600))
				return m
			}
			for off := range int64(3) { // the third finds the first still held: over the bound
				h.Publish([]*Message{big(off)})
			}
			_ = cli.SetReadDeadline(time.Now().Add(testWait))
			f, err := readFrame(cli)
			if err != nil || f.op != wsframe.OpClose || len(f.payload) < 2 || uint16(f.payload[0])<<8|uint16(f.payload[1]) != wsframe.ClosePolicyViolation {
				t.Fatalf("read %+v, %v; want a 1008 close frame", f, err)
			}
		})
	}
}
