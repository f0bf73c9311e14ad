package hub

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest/internal/wsframe"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/testlog"
)

// sseLike is a transport shaped like Server-Sent Events: a comment as
// keepalive, no pongs, no close frame and no closing handshake.
type sseLike struct{}

func (sseLike) Name() string                     { return "sse-like" }
func (sseLike) Keepalive() []byte                { return []byte(":\n\n") }
func (sseLike) PeerAnswers() bool                { return false }
func (sseLike) Pong([]byte) []byte               { return nil }
func (sseLike) CloseFrame(uint16, string) []byte { return nil }
func (sseLike) CloseHandshake() bool             { return false }

// recConn is a net.Conn that records each Write call.
type recConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	writes   [][]byte
	closed   bool
	wrote    chan struct{}
}

func newRecConn() *recConn { return &recConn{wrote: make(chan struct{}, 1000)} }

func (r *recConn) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, bytes.Clone(b))
	r.mu.Unlock()
	r.wrote <- struct{}{}
	return len(b), nil
}
func (r *recConn) SetWriteDeadline(time.Time) error { return nil }
func (r *recConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} }
func (r *recConn) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

func (r *recConn) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(bytes.Join(r.writes, nil))
}

func (r *recConn) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.writes)
}

func sseMsg(payload string) *message.Message {
	return &message.Message{Offset: msgOffset.Add(1), Frames: [message.NumShapes][]byte{[]byte("data: " + payload + "\n\n")}}
}

// A client of another transport gets its data, its own keepalive, no ping
// timeout (its peer never answers), and a close without a close frame or
// handshake.
func TestTransportSSELike(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: time.Second, CloseGrace: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go h.Run(ctx)
		conn := newRecConn()
		closed := make(chan struct{})
		c := h.AddClient(conn, ClientOptions{Sub: Subscription{All: true}, Transport: sseLike{}, OnClosed: func() { close(closed) }})
		h.Publish([]*message.Message{sseMsg("1"), sseMsg("2")})
		time.Sleep(3500 * time.Millisecond) // three keepalives; no ping timeout
		synctest.Wait()
		if got, want := conn.all(), "data: 1\n\ndata: 2\n\n:\n\n:\n\n:\n\n"; got != want {
			t.Fatalf("written %q, want %q", got, want)
		}
		c.Close(wsframe.CloseGoingAway, "going away", ReasonShutdown)
		<-closed // at once: no handshake to wait for
		if got := h.Stats().Closes; got[ReasonShutdown] != 1 || got[ReasonPingTimeout] != 0 {
			t.Fatalf("closes %v", got)
		}
		if got := conn.all(); strings.Count(got, "data:") != 2 || !strings.HasSuffix(got, ":\n\n") {
			t.Fatalf("close wrote more: %q", got)
		}
	})
}

// A connection that is not a raw socket (a *tls.Conn) gets one Write per
// batch, whatever the number of frames in it.
func TestGenericConnOneWritePerBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1})
		conn := newRecConn()
		add(h, conn, Subscription{All: true}, nil)
		msgs := make([]*message.Message, 50)
		for i := range msgs {
			msgs[i] = msg("k", fmt.Sprint(i))
		}
		h.Publish(msgs)
		synctest.Wait()
		if n := conn.count(); n != 1 {
			t.Fatalf("%d writes for one batch of 50 frames, want 1", n)
		}
	})
}

// Pings are answered with the most recent one's payload only, so a flood
// holds at most one pong; more than 100 pings in a second close the
// client with 1008.
func TestPongsCoalescedAndFloodClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, CloseGrace: time.Second})
		p := addPeer(t, h, Subscription{All: true})
		// The writer is blocked on the pipe with the first pong while the
		// others arrive: they collapse into one.
		p.client.Pong([]byte("0"))
		synctest.Wait()
		for i := 1; i <= 50; i++ {
			p.client.Pong(fmt.Appendf(nil, "%d", i))
		}
		synctest.Wait()
		var frames []frame
		done := make(chan struct{})
		_ = p.conn.SetReadDeadline(time.Now().Add(testWait))
		go func() {
			defer close(done)
			for {
				f, err := readFrame(p.conn)
				if err != nil {
					return
				}
				frames = append(frames, f)
				if f.op == wsframe.OpClose {
					p.client.PeerClosed(ReasonClientClosed)
					return
				}
			}
		}()
		synctest.Wait()
		p.client.mu.Lock()
		held := p.client.pong
		p.client.mu.Unlock()
		if held != nil {
			t.Fatalf("pong still queued: %q", held)
		}
		if len(frames) != 2 || string(frames[0].payload) != "0" || string(frames[1].payload) != "50" {
			t.Fatalf("pongs %v, want the first and the last", frames)
		}
		for i := 51; i <= maxPingsPerSecond+1; i++ {
			p.client.Pong(nil)
		}
		<-done
		<-p.closed
		last := frames[len(frames)-1]
		if last.op != wsframe.OpClose || string(last.payload[2:]) != "too many pings" {
			t.Fatalf("last frame %v %q, want close too many pings", last.op, last.payload)
		}
		if got := h.Stats().Closes[ReasonControlFlood]; got != 1 {
			t.Fatalf("control_flood closes = %d", got)
		}
	})
}

// A client added between Wants and Publish starts with the next Publish
// (the frames for its shape were not built for this one); one added
// before Wants gets the batch.
func TestAddBetweenWantsAndPublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1})
		before := newRecConn()
		add(h, before, Subscription{All: true}, nil)
		h.Wants()
		late := newRecConn()
		add(h, late, Subscription{All: true, Shape: message.ShapeEnvelope}, nil)
		h.Publish([]*message.Message{{Offset: 1, Frames: [message.NumShapes][]byte{[]byte("p1")}}})
		h.Wants()
		h.Publish([]*message.Message{{Offset: 2, Frames: [message.NumShapes][]byte{[]byte("p2"), []byte("e2")}}})
		synctest.Wait()
		if got := before.all(); got != "p1p2" {
			t.Errorf("earlier client got %q, want p1p2", got)
		}
		if got := late.all(); got != "e2" {
			t.Errorf("late client got %q, want e2 (from the next Publish on)", got)
		}
	})
}

// ObserveLatency hears of at most one write per 100 ms, with the time from
// the record's timestamp.
func TestObserveLatencySampled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []time.Duration
		h := New(Config{PingInterval: -1, ObserveLatency: func(d time.Duration) {
			mu.Lock()
			got = append(got, d)
			mu.Unlock()
		}})
		for range 3 {
			add(h, newRecConn(), Subscription{All: true}, nil)
		}
		for i := range 10 {
			ts := time.Now().Add(-5 * time.Millisecond)
			h.Publish([]*message.Message{{Offset: int64(i), Timestamp: message.UnixMilli(ts), Frames: [message.NumShapes][]byte{[]byte("x")}}})
			synctest.Wait()
			time.Sleep(50 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 5 {
			t.Fatalf("%d samples over 30 writes in 500 ms, want 5", len(got))
		}
		for _, d := range got {
			if d != 5*time.Millisecond {
				t.Fatalf("sample %v, want 5ms", d)
			}
		}
	})
}

// Teardown logs each close once, at debug, with the client's id, remote
// address, reason and how long it was connected.
func TestCloseLoggedAtDebug(t *testing.T) {
	var buf testlog.Buffer
	h := New(Config{PingInterval: -1, Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := add(h, newRecConn(), Subscription{All: true}, nil)
	c.Abort(ReasonReadError)
	out := buf.String()
	for _, want := range []string{"level=DEBUG", "client closed", fmt.Sprintf("id=%d", c.ID()), "remote=127.0.0.1:9", "reason=read_error", "connected="} {
		if !strings.Contains(out, want) {
			t.Fatalf("log %q lacks %q", out, want)
		}
	}
	if strings.Count(out, "client closed") != 1 {
		t.Fatalf("logged %d times", strings.Count(out, "client closed"))
	}
}

// A Publish longer than maxBatch is copied once: clients with nothing
// queued that take all of it (every key, a glob, or the key of a long run)
// share the copy as their backlog instead of a pointer per message each;
// a client that had something queued gets its own. Each gets every frame
// in order, and closing one leaves the shared array intact for the others.
func TestLargePublishShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1})
		const n = 3 * maxBatch
		var want strings.Builder
		msgs := make([]*message.Message, n)
		for i := range msgs {
			p := fmt.Sprintf("%d,", i)
			want.WriteString(p)
			msgs[i] = &message.Message{Key: []byte("k"), Offset: int64(i), Rows: 1, Frames: [message.NumShapes][]byte{[]byte(p)}}
		}
		subs := map[string]Subscription{
			"all":   {All: true},
			"exact": {Keys: []string{"k"}},
			"glob":  {Keys: []string{"k*"}},
			"busy":  {All: true},
			"gone":  {All: true},
		}
		clients := map[string]*Client{}
		for name, sub := range subs {
			clients[name] = h.AddClient(nil, ClientOptions{Sub: sub}) // no connection yet: frames wait
		}
		early := &message.Message{Key: []byte("k"), Offset: -1, Rows: 1, Frames: [message.NumShapes][]byte{[]byte("early,")}}
		clients["busy"].Push([]*message.Message{early})
		h.Publish(msgs)
		clear(msgs) // the caller may reuse its slice at once

		first := func(c *Client) *message.Message {
			c.mu.Lock()
			defer c.mu.Unlock()
			if !c.shared || len(c.backlog) != n {
				return nil
			}
			return c.backlog[0]
		}
		for _, name := range []string{"all", "exact", "glob", "gone"} {
			c := clients[name]
			if first(c) == nil {
				t.Fatalf("%s: backlog not the shared copy", name)
			}
			if &c.backlog[0] != &clients["all"].backlog[0] {
				t.Fatalf("%s: backlog is a copy of its own", name)
			}
		}
		if c := clients["busy"]; c.shared || len(c.queue) != n+1 {
			t.Fatalf("busy: shared %v, %d queued; want its own queue of %d", c.shared, len(c.queue), n+1)
		}
		clients["gone"].Abort(ReasonClientClosed)
		conns := map[string]*recConn{}
		for name, c := range clients {
			if name != "gone" {
				conns[name] = newRecConn()
				c.Attach(conns[name])
			}
		}
		synctest.Wait()
		for name, conn := range conns {
			w := want.String()
			switch name {
			case "busy":
				w = "early," + w
			}
			if got := conn.all(); got != w {
				t.Errorf("%s: got %d bytes, want %d (in order)", name, len(got), len(w))
			}
		}
	})
}

// slowClose is a connection whose Close waits for release, as a
// *tls.Conn's waits to send close_notify to a peer that does not read.
type slowClose struct {
	net.Conn
	closing chan struct{} // closed when Close starts
	release chan struct{}
}

func (c *slowClose) Close() error {
	close(c.closing)
	<-c.release
	return c.Conn.Close()
}

// TestTeardownClosesOutsideTheLock: a client whose connection takes long
// to close does not hold up Publish to it or to anyone else.
func TestTeardownClosesOutsideTheLock(t *testing.T) {
	h := New(Config{PingInterval: -1})
	srv, cli := net.Pipe()
	defer cli.Close()
	sc := &slowClose{Conn: srv, closing: make(chan struct{}), release: make(chan struct{})}
	defer close(sc.release)
	c := add(h, sc, Subscription{All: true}, nil)
	other := addPeer(t, h, Subscription{All: true})
	go c.Abort(ReasonReadError)
	<-sc.closing
	published := make(chan struct{})
	go func() {
		h.Publish([]*message.Message{msg("k", "1")})
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(testWait):
		t.Fatal("Publish waited for a client's connection to close")
	}
	if got := other.texts(t, 1); got[0] != "1" {
		t.Errorf("got %q", got)
	}
}
