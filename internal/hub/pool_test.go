package hub

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func runHub(t *testing.T, h *Hub) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// Until the pool runs, writes go through goroutines of the clients'
	// own.
	if !spinUntil(func() bool {
		h.pool.mu.Lock()
		defer h.pool.mu.Unlock()
		return h.pool.running
	}) {
		t.Fatal("the writer pool never started")
	}
}

// Frames written through the pool arrive whole and in order, also when the
// socket fills up and a write completes only in part (the rest then goes
// out from a goroutine of the client's own).
func TestPoolPartialWrites(t *testing.T) {
	h := New(Config{PingInterval: -1, MaxQueueBytes: 64 << 20})
	runHub(t, h)
	srv, cli := tcpPair(t)
	// Buffers small enough for 2 MB to fill them (very small ones make
	// loopback TCP crawl), and a reader that starts late.
	_ = srv.SetWriteBuffer(32 << 10)
	_ = cli.SetReadBuffer(256 << 10)
	closed := make(chan struct{})
	c := add(h, srv, Subscription{All: true}, func() { close(closed) })
	if c.raw == nil {
		t.Fatal("a TCP client has no raw connection: the pool is not used")
	}
	const n = 2000
	pad := make([]byte, 1000)
	for i := range pad {
		pad[i] = 'x'
	}
	for i := range n {
		h.Publish([]*message.Message{{Frames: [message.NumShapes][]byte{wsframe.Text(fmt.Appendf(nil, `{"i":%d,"p":"%s"}`, i, pad))}}})
	}
	r := bufio.NewReader(cli)
	_ = cli.SetReadDeadline(time.Now().Add(30 * time.Second))
	for i := range n {
		f, err := readFrame(r)
		if err != nil {
			t.Fatalf("frame %d: %v; stats %+v", i, err, h.Stats())
		}
		if want := fmt.Sprintf(`{"i":%d,"p":"%s"}`, i, pad); string(f.payload) != want {
			t.Fatalf("frame %d = %.30s..., want %.30s...", i, f.payload, want)
		}
	}
	if h.Stats().BlockedWrites == 0 {
		t.Error("no write was left unfinished by the socket: the test did not cover the hand-over")
	}
	c.Abort(ReasonClientClosed)
	<-closed
}

// One long Publish shared by clients as their backlog survives partial
// writes: a client whose socket fills up finishes its piece of the shared
// array from a goroutine of its own without clearing it, so a client that
// gets to that piece later (here: one that had no connection until the
// first had read everything) still finds every message.
func TestPoolPartialWritesShared(t *testing.T) {
	h := New(Config{PingInterval: -1, MaxQueueBytes: 64 << 20})
	runHub(t, h)
	const n = 2000
	pad := strings.Repeat("x", 1000)
	payload := func(i int) string { return fmt.Sprintf(`{"i":%d,"p":"%s"}`, i, pad) }
	read := func(cli *net.TCPConn) error {
		r := bufio.NewReader(cli)
		_ = cli.SetReadDeadline(time.Now().Add(30 * time.Second))
		for i := range n {
			f, err := readFrame(r)
			if err != nil {
				return fmt.Errorf("frame %d: %w", i, err)
			}
			if string(f.payload) != payload(i) {
				return fmt.Errorf("frame %d = %.30s..., want %.30s...", i, f.payload, payload(i))
			}
		}
		return nil
	}
	pair := func() (*net.TCPConn, *net.TCPConn) {
		srv, cli := tcpPair(t)
		_ = srv.SetWriteBuffer(32 << 10)
		_ = cli.SetReadBuffer(256 << 10)
		return srv, cli
	}
	srvA, cliA := pair()
	a := add(h, srvA, Subscription{All: true}, nil)
	if a.raw == nil {
		t.Fatal("a TCP client has no raw connection: the pool is not used")
	}
	b := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true}})
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = &message.Message{Frames: [message.NumShapes][]byte{wsframe.Text([]byte(payload(i)))}}
	}
	h.Publish(msgs)
	shared := func(c *Client) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.shared
	}
	if !shared(a) || !shared(b) {
		t.Fatal("the clients do not share the Publish's copy")
	}
	if err := read(cliA); err != nil {
		t.Fatalf("first client: %v; stats %+v", err, h.Stats())
	}
	if h.Stats().BlockedWrites == 0 {
		t.Fatal("no write was left unfinished by the socket: the test did not cover the hand-over")
	}
	srvB, cliB := pair()
	b.Attach(srvB)
	if err := read(cliB); err != nil {
		t.Fatalf("second client: %v; stats %+v", err, h.Stats())
	}
}

// Clients waiting in the pool's run queue when the pool stops still get
// their frames and their close frame at shutdown. The pool is marked
// running without workers, so the clients certainly wait in its queue
// when it stops.
func TestPoolStopHandsOverQueuedClients(t *testing.T) {
	h := New(Config{PingInterval: -1, CloseGrace: time.Second})
	h.pool.mu.Lock()
	h.pool.running = true
	h.pool.mu.Unlock()
	srv, cli := tcpPair(t)
	c := add(h, srv, Subscription{All: true}, nil)
	h.Publish([]*message.Message{msg("k", "1"), msg("k", "2")})
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	h.pool.mu.Lock()
	queued := len(h.pool.runq)
	h.pool.mu.Unlock()
	if state != stateQueued || queued != 1 {
		t.Fatalf("state %v, run queue %d: want the client queued once", state, queued)
	}
	h.pool.stop()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	shut := make(chan error, 1)
	go func() { shut <- h.Shutdown(sctx) }()
	r := bufio.NewReader(cli)
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []string
	for {
		f, err := readFrame(r)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(f.payload))
		if f.op == wsframe.OpClose {
			break
		}
	}
	cli.Close()
	if len(got) != 3 || got[0] != "1" || got[1] != "2" {
		t.Fatalf("got %q, want frames 1, 2, then the close frame", got)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}
