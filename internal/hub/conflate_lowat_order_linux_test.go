//go:build linux

package hub

import (
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gatedRaw is a real socket's RawConn whose Control can be held (a
// writer preempted between unlocking c.mu and its setsockopt).
type gatedRaw struct {
	syscall.RawConn
	mu      sync.Mutex
	calls   int
	holdAt  int           // the Control call (1-based) to hold
	held    chan struct{} // closed when that call is held
	release chan struct{} // closed to let it go on
	done    chan struct{} // closed when that call returned
}

func (r *gatedRaw) Control(f func(fd uintptr)) error {
	r.mu.Lock()
	r.calls++
	n := r.calls
	r.mu.Unlock()
	if n == r.holdAt {
		close(r.held)
		<-r.release
		defer close(r.done)
	}
	return r.RawConn.Control(f)
}

// gatedConn is a TCP connection seen as a RawSocket, whose blocking
// Write can be held (a slow socket).
type gatedConn struct {
	net.Conn
	raw     *gatedRaw
	wrote   chan struct{}
	release chan struct{}
	once    sync.Once
}

func (c *gatedConn) RawSocket() syscall.RawConn { return c.raw }
func (c *gatedConn) Write(b []byte) (int, error) {
	c.once.Do(func() { close(c.wrote); <-c.release })
	return c.Conn.Write(b)
}

// The writer sets TCP_NOTSENT_LOWAT after unlocking c.mu; a turn that
// only sets it (conflation ended: 64 KiB) ends as a write does, so that
// no other writer sets it meanwhile: a conflation that starts while the
// 64 KiB is being set gets its 1 KiB after it, never before.
func TestConflateNotSentLimitInOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := sc.(*net.TCPConn).SyscallConn()
	raw := &gatedRaw{RawConn: rc, holdAt: 2, held: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
	conn := &gatedConn{Conn: sc, raw: raw, wrote: make(chan struct{}), release: make(chan struct{})}
	lowat := func() int {
		v := -1
		_ = rc.Control(func(fd uintptr) { v, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat) })
		return v
	}

	h := New(Config{Conflate: true, PingInterval: -1, WriteTimeout: time.Hour})
	c := h.AddClient(conn, ClientOptions{Sub: Subscription{All: true}}) // Control #1: 64 KiB
	// Conflated with nothing pending: its writer finds it caught up at
	// once, goes idle and is preempted before its setsockopt (#2, 64 KiB).
	c.mu.Lock()
	c.conflateLocked(nil)
	c.wakeLocked()
	c.mu.Unlock()
	<-raw.held
	// Conflated again meanwhile (a burst): the writer that set 64 KiB
	// then takes a piece, setting 1 KiB first, and writes it into a
	// socket that does not take it at once.
	c.mu.Lock()
	c.conflateLocked(ratedMsg("k", 1))
	c.wakeLocked()
	c.mu.Unlock()
	close(raw.release) // the setsockopt of 64 KiB lands now
	<-raw.done
	<-conn.wrote
	c.mu.Lock()
	conflated := c.latest != nil
	c.mu.Unlock()
	got := lowat()
	close(conn.release)
	if !conflated || got != slowNotSentBytes {
		t.Fatalf("conflated %v, TCP_NOTSENT_LOWAT %d, want %d while conflated", conflated, got, slowNotSentBytes)
	}
}
