package netpoll_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/netpoll"
)

// waitFor bounds every wait; passing runs finish far sooner.
const waitFor = 20 * time.Second

// recorder is a Handler that keeps what it is given. It checks that calls
// for its connection never overlap and that nothing follows OnEOF.
type recorder struct {
	t       *testing.T
	mu      sync.Mutex
	data    bytes.Buffer
	eofs    int
	eofErr  error
	inCall  bool
	changed chan struct{} // signalled (without blocking) on every call
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, changed: make(chan struct{}, 1)}
}

func (r *recorder) enter() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inCall {
		r.t.Error("handler calls overlap")
	}
	if r.eofs > 0 {
		r.t.Error("handler called after OnEOF")
	}
	r.inCall = true
}

func (r *recorder) leave() {
	r.mu.Lock()
	r.inCall = false
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) OnData(b []byte) {
	r.enter()
	defer r.leave()
	r.mu.Lock()
	r.data.Write(b)
	r.mu.Unlock()
}

func (r *recorder) OnEOF(err error) {
	r.enter()
	defer r.leave()
	r.mu.Lock()
	r.eofs++
	r.eofErr = err
	r.mu.Unlock()
}

func (r *recorder) state() (data string, eofs int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.data.String(), r.eofs, r.eofErr
}

// waitUntil waits until cond holds for the recorder's state.
func (r *recorder) waitUntil(what string, cond func(data string, eofs int, err error) bool) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), waitFor)
	defer cancel()
	for {
		if cond(r.state()) {
			return
		}
		select {
		case <-r.changed:
		case <-ctx.Done():
			data, eofs, err := r.state()
			r.t.Fatalf("timed out waiting for %s: data %d bytes, %d EOFs (%v)", what, len(data), eofs, err)
		}
	}
}

func (r *recorder) waitData(want string) {
	r.t.Helper()
	r.waitUntil(fmt.Sprintf("%d bytes of data", len(want)), func(data string, _ int, _ error) bool { return len(data) >= len(want) })
	if data, _, _ := r.state(); data != want {
		r.t.Fatalf("data %.60q (%d bytes), want %.60q (%d bytes)", data, len(data), want, len(want))
	}
}

func (r *recorder) waitEOF() error {
	r.t.Helper()
	r.waitUntil("OnEOF", func(_ string, eofs int, _ error) bool { return eofs > 0 })
	_, _, err := r.state()
	return err
}

func newPoller(t *testing.T) *netpoll.Poller {
	t.Helper()
	p, err := netpoll.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// tcpPair returns the two ends of a loopback TCP connection, closed when
// the test ends.
func tcpPair(t *testing.T, ln net.Listener) (client, server *net.TCPConn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		c.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// pair is a connection under test: the end the poller reads and the peer.
type pair struct {
	name        string
	peer, owned net.Conn
}

// pairs returns a TCP pair (served by the shared epoll loop on Linux) and
// a net.Pipe (always served by a goroutine of its own).
func pairs(t *testing.T) []pair {
	c, s := tcpPair(t, listen(t))
	pc, ps := net.Pipe()
	t.Cleanup(func() {
		pc.Close()
		ps.Close()
	})
	return []pair{{"tcp", c, s}, {"pipe", pc, ps}}
}

func TestDataThenEOF(t *testing.T) {
	p := newPoller(t)
	for _, pr := range pairs(t) {
		t.Run(pr.name, func(t *testing.T) {
			r := newRecorder(t)
			if _, err := p.Watch(pr.owned, r); err != nil {
				t.Fatal(err)
			}
			want := ""
			for _, s := range []string{"hello", ", ", "world"} {
				if _, err := pr.peer.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
				want += s
				r.waitData(want)
			}
			pr.peer.Close()
			if err := r.waitEOF(); err != nil {
				t.Errorf("OnEOF(%v), want nil for a clean end of stream", err)
			}
			pr.owned.Close()
		})
	}
}

func TestBigData(t *testing.T) {
	p := newPoller(t)
	for _, pr := range pairs(t) {
		t.Run(pr.name, func(t *testing.T) {
			r := newRecorder(t)
			if _, err := p.Watch(pr.owned, r); err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat([]byte("0123456789abcdef"), 1<<20/16) // 1 MiB, many reads
			for i := range want {
				want[i] += byte(i / 4096)
			}
			errc := make(chan error, 1)
			go func() {
				_, err := pr.peer.Write(want)
				if err == nil {
					err = pr.peer.Close()
				}
				errc <- err
			}()
			if err := r.waitEOF(); err != nil {
				t.Errorf("OnEOF(%v)", err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if data, _, _ := r.state(); data != string(want) {
				t.Errorf("got %d bytes, want %d, in order", len(data), len(want))
			}
		})
	}
}

// TestReset: a peer that resets the connection ends it with an error,
// whether the connection is watched or adopted.
func TestReset(t *testing.T) {
	p := newPoller(t)
	for _, tc := range []struct {
		name  string
		start func(net.Conn, netpoll.Handler) (net.Conn, error)
	}{
		{"watch", func(c net.Conn, h netpoll.Handler) (net.Conn, error) { _, err := p.Watch(c, h); return c, err }},
		{"adopt", p.Adopt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t, listen(t))
			r := newRecorder(t)
			conn, err := tc.start(s, r)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := c.SetLinger(0); err != nil {
				t.Fatal(err)
			}
			c.Close() // sends RST
			if err := r.waitEOF(); err == nil {
				t.Error("OnEOF(nil) after a reset, want the read error")
			}
		})
	}
}

// TestForgetAfterOwnerClose: once the owner has closed its connection and
// forgotten it, nothing more is delivered for it, and the poller serves
// the others as before.
func TestForgetAfterOwnerClose(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	c1, s1 := tcpPair(t, ln)
	c2, s2 := tcpPair(t, ln)
	r1, r2 := newRecorder(t), newRecorder(t)
	w1, err := p.Watch(s1, r1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Watch(s2, r2); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	w1.Forget()
	w1.Forget() // twice is harmless
	c1.Write([]byte("ignored"))
	c1.Close()

	// The loop serves connection 2 afterwards; by then anything for 1 would
	// have been seen too.
	c2.Write([]byte("x"))
	r2.waitData("x")
	c2.Close()
	r2.waitEOF()
	if data, eofs, _ := r1.state(); data != "" || eofs != 0 {
		t.Errorf("forgotten connection got %q and %d EOFs", data, eofs)
	}
	netpoll.Watch{}.Forget() // the zero Watch too
}

func TestManyConns(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	const n = 200
	peers := make([]net.Conn, n)
	recs := make([]*recorder, n)
	for i := range n {
		c, s := tcpPair(t, ln)
		peers[i], recs[i] = c, newRecorder(t)
		if _, err := p.Watch(s, recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range peers {
		if _, err := fmt.Fprintf(c, "conn %d", i); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			c.Close()
		}
	}
	for i, r := range recs {
		r.waitData(fmt.Sprintf("conn %d", i))
		if i%2 == 0 {
			r.waitEOF()
		}
	}
	for i, c := range peers {
		if i%2 == 1 {
			if _, _, err := recs[i].state(); err != nil {
				t.Errorf("conn %d: %v", i, err)
			}
			c.Close()
		}
	}
	for i, r := range recs {
		if err := r.waitEOF(); err != nil {
			t.Errorf("conn %d: OnEOF(%v)", i, err)
		}
		if _, eofs, _ := r.state(); eofs != 1 {
			t.Errorf("conn %d: %d EOFs", i, eofs)
		}
	}
}

func TestWatchAfterClose(t *testing.T) {
	p, err := netpoll.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, pr := range pairs(t) {
		if _, err := p.Watch(pr.owned, newRecorder(t)); !errors.Is(err, netpoll.ErrClosed) {
			t.Errorf("%s: Watch after Close = %v, want ErrClosed", pr.name, err)
		}
	}
}

// TestCloseWaitsForFallbackReaders: Close returns once the goroutine
// readers have ended, which they do when their connections close.
func TestCloseWaitsForFallbackReaders(t *testing.T) {
	p, err := netpoll.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, ps := net.Pipe()
	r := newRecorder(t)
	if _, err := p.Watch(ps, r); err != nil {
		t.Fatal(err)
	}
	ps.Close() // the owner closes: the reader fails and ends
	if err := r.waitEOF(); err == nil {
		t.Error("OnEOF(nil) for a connection its owner closed")
	}
	pc.Close()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, eofs, _ := r.state(); eofs != 1 {
		t.Errorf("%d EOFs, want 1", eofs)
	}
}
