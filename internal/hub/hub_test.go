package hub

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// frame is one server frame as read by a test peer.
type frame struct {
	op      byte
	payload []byte
}

// readFrame reads one unmasked server frame.
func readFrame(r io.Reader) (frame, error) {
	var h [10]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return frame{}, err
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[2:4]); err != nil {
			return frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(r, h[2:10]); err != nil {
			return frame{}, err
		}
		n = binary.BigEndian.Uint64(h[2:10])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return frame{}, err
	}
	return frame{op: h[0] & 0x0F, payload: p}, nil
}

// msgOffset gives each test message an offset of its own, as records have
// (Release tells messages apart by partition and offset).
var msgOffset atomic.Int64

func msg(key string, payload string) *message.Message {
	m := &message.Message{Offset: msgOffset.Add(1), Frames: [message.NumShapes][]byte{wsframe.Text([]byte(payload)), wsframe.Text([]byte(`{"env":` + payload + `}`))}}
	if key != "\x00" {
		m.Key = []byte(key)
	}
	return m
}

// peer is the test's end of a pipe given to the hub.
type peer struct {
	conn   net.Conn
	client *Client
	closed chan struct{}
}

// add registers a WebSocket client for conn with subscription sub and
// onClosed as its OnClosed.
func add(h *Hub, conn Conn, sub Subscription, onClosed func()) *Client {
	return h.AddClient(conn, ClientOptions{Sub: sub, OnClosed: onClosed})
}

func addPeer(t *testing.T, h *Hub, sub Subscription) *peer {
	t.Helper()
	srv, cli := net.Pipe()
	p := &peer{conn: cli, closed: make(chan struct{})}
	p.client = add(h, srv, sub, func() { close(p.closed) })
	t.Cleanup(func() { cli.Close() })
	return p
}

// testWait bounds every wait of these tests; a passing run is far
// quicker.
const testWait = 20 * time.Second

// readTexts reads n text frames within testWait. It does not fail the
// test, so that a spawned goroutine may call it.
func (p *peer) readTexts(n int) ([]string, error) {
	_ = p.conn.SetReadDeadline(time.Now().Add(testWait))
	var out []string
	for len(out) < n {
		f, err := readFrame(p.conn)
		if err != nil {
			return out, fmt.Errorf("read frame %d: %w", len(out), err)
		}
		if f.op == wsframe.OpText {
			out = append(out, string(f.payload))
		}
	}
	return out, nil
}

// texts reads n text frames, failing the test if they do not come.
func (p *peer) texts(t *testing.T, n int) []string {
	t.Helper()
	out, err := p.readTexts(n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// spinUntil waits, yielding, until cond holds; it reports false if that
// takes longer than testWait.
func spinUntil(cond func() bool) bool {
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
	}
	return true
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name string
		sub  Subscription
		want []string
	}{
		{"all", Subscription{All: true}, []string{"1", "2", "3", "null", "4", "5e", "5"}},
		{"star", Subscription{Keys: []string{"*"}}, []string{"1", "2", "3", "null", "4", "5e", "5"}},
		{"exact", Subscription{Keys: []string{"a"}}, []string{"1", "4"}},
		{"two exact", Subscription{Keys: []string{"a", "b-1"}}, []string{"1", "2", "4"}},
		{"glob", Subscription{Keys: []string{"b-*"}}, []string{"2", "3"}},
		{"glob question", Subscription{Keys: []string{"b-?"}}, []string{"2"}},
		{"glob and exact", Subscription{Keys: []string{"b-1?", "a"}}, []string{"1", "3", "4"}},
		{"empty key", Subscription{Keys: []string{""}}, []string{"5e"}},
		{"envelope", Subscription{Keys: []string{"a"}, Shape: message.ShapeEnvelope}, []string{`{"env":1}`, `{"env":4}`}},

		{"all, granted exact", Subscription{All: true, Grant: []string{"a"}}, []string{"1", "4"}},
		{"all, granted pattern", Subscription{All: true, Grant: []string{"b-*"}}, []string{"2", "3"}},
		{"all, granted pattern and exact", Subscription{All: true, Grant: []string{"b-?", "c"}}, []string{"2", "5"}},
		{"all, granted star", Subscription{All: true, Grant: []string{"*"}}, []string{"1", "2", "3", "null", "4", "5e", "5"}},
		{"glob, granted narrower", Subscription{Keys: []string{"b-*"}, Grant: []string{"b-1"}}, []string{"2"}},
		{"exact, one granted", Subscription{Keys: []string{"a", "c"}, Grant: []string{"a"}}, []string{"1", "4"}},
		{"glob and exact, granted pattern", Subscription{Keys: []string{"b-1?", "a"}, Grant: []string{"b-*"}}, []string{"3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Config{Shards: 3, PingInterval: -1})
			p := addPeer(t, h, tt.sub)
			type result struct {
				got []string
				err error
			}
			done := make(chan result)
			go func() {
				got, err := p.readTexts(len(tt.want))
				done <- result{got, err}
			}()
			h.Publish([]*message.Message{msg("a", "1"), msg("b-1", "2"), msg("b-12", "3")})
			h.Publish([]*message.Message{msg("\x00", "null"), msg("a", "4"), msg("", "5e"), msg("c", "5")})
			r := <-done
			got := r.got
			if r.err != nil {
				t.Fatal(r.err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWants(t *testing.T) {
	h := New(Config{PingInterval: -1})
	if w := h.Wants(); w[message.ShapePlain] || w[message.ShapeEnvelope] {
		t.Fatalf("empty hub wants %v", w)
	}
	p := addPeer(t, h, Subscription{All: true, Shape: message.ShapeEnvelope})
	if w := h.Wants(); w[message.ShapePlain] || !w[message.ShapeEnvelope] {
		t.Fatalf("wants %v, want envelope only", w)
	}
	p.client.Abort(ReasonClientClosed)
	<-p.closed
	if w := h.Wants(); w[message.ShapeEnvelope] {
		t.Fatalf("wants %v after the client left", w)
	}
}

// A client that never reads is closed when its queue passes the bound,
// while a reading client gets everything.
func TestSlowClientClosedOthersServed(t *testing.T) {
	h := New(Config{MaxQueueBytes: 1 << 10, WriteTimeout: time.Hour, PingInterval: -1})
	slow := addPeer(t, h, Subscription{All: true})
	fast := addPeer(t, h, Subscription{All: true})
	// The fast peer reads each message before the next is published, so
	// only the slow one falls behind.
	for i := range 500 {
		want := fmt.Sprintf(`{"i":%d}`, i)
		h.Publish([]*message.Message{msg("k", want)})
		if got := fast.texts(t, 1)[0]; got != want {
			t.Fatalf("frame %d = %s, want %s", i, got, want)
		}
	}
	if !slow.client.isClosing() {
		t.Fatal("slow client not closing")
	}
	// The slow peer finally reads: it finds data, then the close frame
	// 1008 "too slow".
	_ = slow.conn.SetReadDeadline(time.Now().Add(testWait))
	var last frame
	for {
		f, err := readFrame(slow.conn)
		if err != nil {
			break
		}
		last = f
		if f.op == wsframe.OpClose {
			break
		}
	}
	if last.op != wsframe.OpClose || binary.BigEndian.Uint16(last.payload) != wsframe.ClosePolicyViolation || string(last.payload[2:]) != "too slow" {
		t.Fatalf("last frame %v %q, want close 1008 too slow", last.op, last.payload)
	}
	slow.conn.Close()
	slow.client.Abort(ReasonClientClosed) // as the server's reader would on EOF
	<-slow.closed
	if got := h.Stats().Closes[ReasonQueueFull]; got != 1 {
		t.Fatalf("queue_full closes = %d, want 1", got)
	}
}

// A write that does not complete within WriteTimeout drops the client.
func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{WriteTimeout: 5 * time.Second, PingInterval: -1})
		p := addPeer(t, h, Subscription{All: true})
		h.Publish([]*message.Message{msg("k", "1")})
		<-p.closed
		if got := h.Stats().Closes[ReasonWriteTimeout]; got != 1 {
			t.Fatalf("write_timeout closes = %d, want 1", got)
		}
	})
}

// A peer from which nothing is read for two ping intervals is dropped; one
// that answers stays.
func TestPingTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: time.Second, WriteTimeout: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		go h.Run(ctx)
		dead := addPeer(t, h, Subscription{All: true})
		alive := addPeer(t, h, Subscription{All: true})
		go func() {
			for {
				f, err := readFrame(alive.conn)
				if err != nil {
					return
				}
				if f.op == wsframe.OpPing {
					alive.client.Touch()
				}
			}
		}()
		go func() { _, _ = io.Copy(io.Discard, dead.conn) }()
		<-dead.closed
		if alive.client.isClosing() {
			t.Fatal("live client closed")
		}
		if got := h.Stats().Closes[ReasonPingTimeout]; got != 1 {
			t.Fatalf("ping_timeout closes = %d, want 1", got)
		}
		cancel()
	})
}

func TestShutdownSendsGoingAwayAfterQueued(t *testing.T) {
	h := New(Config{PingInterval: -1, CloseGrace: time.Hour})
	p := addPeer(t, h, Subscription{All: true})
	var frames []frame
	var wg sync.WaitGroup
	_ = p.conn.SetReadDeadline(time.Now().Add(testWait))
	wg.Go(func() {
		for {
			f, err := readFrame(p.conn)
			if err != nil {
				return
			}
			frames = append(frames, f)
			if f.op == wsframe.OpClose {
				p.conn.Close() // the peer hangs up after the close frame
				return
			}
		}
	})
	h.Publish([]*message.Message{msg("k", "1"), msg("k", "2")})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	shut := make(chan error)
	go func() { shut <- h.Shutdown(ctx) }()
	wg.Wait()
	// The pipe has no half-close, so the hub learns of the hang-up only
	// through the reader, as the server's session would tell it.
	p.client.PeerClosed(ReasonClientClosed)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if len(frames) != 3 || string(frames[0].payload) != "1" || string(frames[1].payload) != "2" {
		t.Fatalf("frames = %v", frames)
	}
	if c := binary.BigEndian.Uint16(frames[2].payload); c != wsframe.CloseGoingAway || string(frames[2].payload[2:]) != "going away" {
		t.Fatalf("close = %d %q", c, frames[2].payload[2:])
	}
}

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pat, key string
		want     bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"a*", "bac", false},
		{"*c", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false}, {"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false}, {"sensor-*", "sensor-1/x", true}, {"??", "a", false},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa", false}, {"", "", true}, {"", "a", false},
		// A '*' in the key is an ordinary byte: the pattern's '*' must not
		// match it literally and lose its power to match a run.
		{"*a", "*ba", true}, {"*-x", "*-y-x", true}, {"a*", "a*", true}, {"?*c", "**bc", true},
	}
	for _, tt := range tests {
		if got := matchGlob(tt.pat, []byte(tt.key)); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.pat, tt.key, got, tt.want)
		}
	}
}

// Frames published while a client's batch is being written go out
// together in its next write: batches grow with the backlog, with no
// delay added while the writer keeps up.
func TestBatchesGrowOnlyWithBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1})
		p := addPeer(t, h, Subscription{All: true})
		start := time.Now()
		h.Publish([]*message.Message{msg("k", "1")}) // the pipe blocks the writer until read
		synctest.Wait()
		h.Publish([]*message.Message{msg("k", "2")})
		h.Publish([]*message.Message{msg("k", "3")})
		if got := p.texts(t, 3); fmt.Sprint(got) != "[1 2 3]" || time.Since(start) != 0 {
			t.Fatalf("got %q after %v, want [1 2 3] at once", got, time.Since(start))
		}
		synctest.Wait() // the writer has counted its write and gone idle
		if w := h.Stats().Writes; w != 2 {
			t.Fatalf("writes = %d, want 2 (frames 2 and 3 in one write)", w)
		}
		p.client.Abort(ReasonClientClosed)
		<-p.closed
	})
}

// A client added before its handshake is answered keeps what is published
// meanwhile and gets it once attached.
func TestAttachDeliversWhatWasQueued(t *testing.T) {
	h := New(Config{PingInterval: -1})
	closed := make(chan struct{})
	c := add(h, nil, Subscription{All: true}, func() { close(closed) })
	h.Publish([]*message.Message{msg("k", "1"), msg("k", "2")})
	srv, cli := net.Pipe()
	defer cli.Close()
	c.Attach(srv)
	p := &peer{conn: cli, client: c, closed: closed}
	if got := p.texts(t, 2); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("got %q", got)
	}
	c.Abort(ReasonClientClosed)
	<-closed
}

// A client that never gets its connection (failed handshake) is forgotten.
func TestAbortBeforeAttach(t *testing.T) {
	h := New(Config{PingInterval: -1})
	c := add(h, nil, Subscription{All: true}, nil)
	h.Publish([]*message.Message{msg("k", "1")})
	c.Abort(ReasonHandshake)
	if s := h.Stats(); s.Clients != 0 || s.Closes[ReasonHandshake] != 1 {
		t.Fatalf("stats %+v", s)
	}
	srv, cli := net.Pipe()
	defer cli.Close()
	c.Attach(srv) // too late: the connection is closed at once
	if _, err := srv.Write([]byte{0}); err == nil {
		t.Fatal("connection attached to a torn-down client is still open")
	}
}

// A frame larger than the queue bound is skipped, not a reason to close.
func TestOversizedFrameSkipped(t *testing.T) {
	h := New(Config{PingInterval: -1, MaxQueueBytes: 200, Logger: slog.New(slog.DiscardHandler)})
	p := addPeer(t, h, Subscription{All: true})
	big := msg("k", fmt.Sprintf("%q", make([]byte, 300)))
	h.Publish([]*message.Message{big, msg("k", "after")})
	if got := p.texts(t, 1); got[0] != "after" {
		t.Fatalf("got %q", got)
	}
	if s := h.Stats(); s.Oversized != 1 || p.client.isClosing() { // the plain frame: no envelope client
		t.Fatalf("oversized = %d, closing = %v", s.Oversized, p.client.isClosing())
	}
}

// A peer whose close frame arrives while the hub's own close frame still
// waits behind data must still get a close frame (RFC 6455 5.5.1), after
// at most the batch being written, not a dropped connection.
func TestPeerCloseBeforeOurCloseFrameIsAnswered(t *testing.T) {
	tests := []struct {
		name   string
		code   uint16
		reason string
		why    CloseReason
	}{
		{"going away", wsframe.CloseGoingAway, "going away", ReasonShutdown},
		{"normal", wsframe.CloseNormal, "bye", ReasonClientClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Config{PingInterval: -1, CloseGrace: time.Hour})
			p := addPeer(t, h, Subscription{All: true})
			// The peer does not read yet: the writer blocks on the pipe with
			// "1", so the close frame waits behind it.
			h.Publish([]*message.Message{msg("k", "1")})
			h.Publish([]*message.Message{msg("k", "2")})
			p.client.Close(tt.code, tt.reason, tt.why)
			p.client.PeerClosed(ReasonClientClosed) // the peer's close frame, read meanwhile
			var frames []frame
			for {
				f, err := readFrame(p.conn)
				if err != nil {
					t.Fatalf("after %d frames: %v, want a close frame", len(frames), err)
				}
				frames = append(frames, f)
				if f.op == wsframe.OpClose {
					break
				}
			}
			last := frames[len(frames)-1]
			if c := binary.BigEndian.Uint16(last.payload); c != tt.code || string(last.payload[2:]) != tt.reason {
				t.Errorf("close %d %q, want %d %q", c, last.payload[2:], tt.code, tt.reason)
			}
			if len(frames) > 3 || len(frames) > 1 && string(frames[0].payload) != "1" {
				t.Errorf("frames before the close: %v, want at most [1 2]", frames[:len(frames)-1])
			}
			p.conn.Close()
			p.client.Abort(ReasonClientClosed) // as the reader would on EOF
			<-p.closed
			if got := h.Stats().Closes[tt.why]; got != 1 {
				t.Errorf("closes[%s] = %d, want 1", tt.why, got)
			}
		})
	}
}

// A client that joins while Shutdown is under way (its handshake was in
// flight when the snapshot was taken) is closed with 1001 like the others,
// and Shutdown waits for it too.
func TestShutdownClosesClientsAddedMeanwhile(t *testing.T) {
	h := New(Config{PingInterval: -1, CloseGrace: time.Hour})
	early := addPeer(t, h, Subscription{All: true})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- h.Shutdown(ctx) }()
	expectGoingAway := func(p *peer) {
		t.Helper()
		_ = p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		f, err := readFrame(p.conn)
		if err != nil {
			t.Fatalf("want close 1001: %v", err)
		}
		if f.op != wsframe.OpClose || binary.BigEndian.Uint16(f.payload) != wsframe.CloseGoingAway {
			t.Fatalf("got %v %q, want close 1001", f.op, f.payload)
		}
	}
	expectGoingAway(early) // Shutdown has taken its snapshot
	late := addPeer(t, h, Subscription{All: true})
	pending := add(h, nil, Subscription{All: true}, nil) // handshake not yet answered
	expectGoingAway(late)
	srv, cli := net.Pipe()
	defer cli.Close()
	pending.Attach(srv)
	expectGoingAway(&peer{conn: cli, client: pending})
	for _, c := range []*Client{early.client, late.client} {
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v with clients left", err)
		default:
		}
		c.PeerClosed(ReasonClientClosed) // the peers answer the close frame
	}
	pending.PeerClosed(ReasonClientClosed)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if s := h.Stats(); s.Clients != 0 || s.Closes[ReasonShutdown] != 3 {
		t.Fatalf("clients %d, shutdown closes %d, want 0 and 3", s.Clients, s.Closes[ReasonShutdown])
	}
}

// Clients may be added while Shutdown waits, including at the moment the
// last one leaves; Shutdown must neither panic nor miss them. The loop
// aims the late Add at that moment; with a sync.WaitGroup in place of the
// hub's count of live clients, a run of it panics ("WaitGroup is reused
// before previous Wait has returned").
func TestAddWhileShutdownWaits(t *testing.T) {
	for range 2000 {
		h := New(Config{PingInterval: -1})
		srv, cli := net.Pipe()
		c := add(h, srv, Subscription{All: true}, nil)
		shut := make(chan error, 1)
		go func() { shut <- h.Shutdown(context.Background()) }()
		added := make(chan *Client, 1)
		go func() {
			if !spinUntil(func() bool { return h.stats.clients.Load() == 0 }) { // until c leaves
				added <- nil
				return
			}
			added <- add(h, nil, Subscription{All: true}, nil)
		}()
		if !spinUntil(h.stopping.Load) {
			t.Fatal("Shutdown never started")
		}
		c.Abort(ReasonClientClosed)
		late := <-added
		if late == nil {
			t.Fatal("the client never left")
		}
		if !late.isClosing() {
			t.Fatal("client added during Shutdown is not closing")
		}
		late.Abort(ReasonHandshake)
		if err := <-shut; err != nil {
			t.Fatal(err)
		}
		cli.Close()
	}
}

// An idle client holds no queue arrays: after a burst they go back to its
// shard, for the next busy client.
func TestIdleClientHoldsNoArrays(t *testing.T) {
	h := New(Config{PingInterval: -1})
	p := addPeer(t, h, Subscription{All: true})
	msgs := make([]*message.Message, 100)
	for i := range msgs {
		msgs[i] = msg("k", fmt.Sprint(i))
	}
	h.Publish(msgs)
	p.texts(t, len(msgs))
	// The writer ends its turn right after its last write; the next
	// publish waits for nothing, so poll the client's state.
	deadline := time.Now().Add(testWait)
	for {
		p.client.mu.Lock()
		idle := p.client.state == stateIdle
		held := p.client.queue != nil || p.client.spare != nil
		p.client.mu.Unlock()
		if idle {
			if held {
				t.Fatal("idle client still holds queue arrays")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writer never went idle")
		}
		time.Sleep(time.Millisecond)
	}
	if s := h.shardOf(p.client); len(s.free) == 0 {
		t.Fatal("arrays not given back to the shard")
	}
}

// isClosing reports whether the hub has started closing the client.
func (c *Client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}
