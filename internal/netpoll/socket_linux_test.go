//go:build linux

package netpoll_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/netpoll"
)

// adopt hands the server end of a new TCP pair to p and returns the peer
// and the Socket.
func adopt(t *testing.T, p *netpoll.Poller, ln net.Listener, h netpoll.Handler) (*net.TCPConn, *netpoll.Socket) {
	t.Helper()
	c, s := tcpPair(t, ln)
	conn, err := p.Adopt(s, h)
	if err != nil {
		t.Fatal(err)
	}
	sock, ok := conn.(*netpoll.Socket)
	if !ok {
		t.Fatalf("Adopt(*net.TCPConn) returned a %T", conn)
	}
	t.Cleanup(func() { sock.Close() })
	return c, sock
}

// full fills the send side of sock (and the peer's receive side, which
// does not read) until a non-blocking write would block.
func full(t *testing.T, sock *netpoll.Socket) {
	t.Helper()
	chunk := make([]byte, 64<<10)
	err := sock.RawSocket().Control(func(fd uintptr) {
		for {
			if _, err := syscall.Write(int(fd), chunk); err != nil {
				if !errors.Is(err, syscall.EAGAIN) {
					t.Errorf("filling the socket: %v", err)
				}
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAdoptReadsAndWrites(t *testing.T) {
	p := newPoller(t)
	r := newRecorder(t)
	c, s := tcpPair(t, listen(t))
	// Bytes already waiting in the socket when it is adopted are read too.
	if _, err := c.Write([]byte("early ")); err != nil {
		t.Fatal(err)
	}
	conn, err := p.Adopt(s, r)
	if err != nil {
		t.Fatal(err)
	}
	sock := conn.(*netpoll.Socket)
	defer sock.Close()
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the adopted *net.TCPConn still works (Write: %v); Adopt closes it", err)
	}
	r.waitData("early ")
	if _, err := c.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	r.waitData("early late")

	if _, err := sock.Write([]byte("to the peer")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "to the peer" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	if got, want := sock.RemoteAddr().String(), c.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want %s", got, want)
	}
	if got, want := sock.LocalAddr().String(), c.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr %s, want %s", got, want)
	}
	if _, err := sock.Read(buf); !errors.Is(err, netpoll.ErrPolled) {
		t.Errorf("Read: %v, want ErrPolled", err)
	}

	// The peer's end of stream.
	c.Close()
	if err := r.waitEOF(); err != nil {
		t.Errorf("OnEOF(%v), want nil", err)
	}
}

// TestAdoptOther: a connection that is not a *net.TCPConn is read by a
// goroutine and returned as it is.
func TestAdoptOther(t *testing.T) {
	p := newPoller(t)
	pc, ps := net.Pipe()
	defer pc.Close()
	r := newRecorder(t)
	conn, err := p.Adopt(ps, r)
	if err != nil {
		t.Fatal(err)
	}
	if conn != ps {
		t.Fatalf("Adopt(pipe) returned %T, want the pipe", conn)
	}
	if _, err := pc.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	r.waitData("hi")
	ps.Close()
	r.waitEOF()
}

func TestAdoptAfterClose(t *testing.T) {
	p, err := netpoll.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	_, s := tcpPair(t, listen(t))
	if _, err := p.Adopt(s, newRecorder(t)); !errors.Is(err, netpoll.ErrClosed) {
		t.Errorf("Adopt after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Write([]byte("x")); err != nil {
		t.Errorf("a connection Adopt refused must stay usable: %v", err)
	}
}

// TestSocketClose: once its owner closes a Socket, its handler hears
// nothing more, the peer sees the end of the stream, and every method
// fails or reports nothing.
func TestSocketClose(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	r := newRecorder(t)
	c, sock := adopt(t, p, ln, r)
	if err := sock.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sock.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("peer read %v, want EOF", err)
	}
	c.Write([]byte("ignored"))
	if _, err := sock.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := sock.CloseWrite(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("CloseWrite after Close: %v", err)
	}
	if a := sock.RemoteAddr(); a != nil {
		t.Errorf("RemoteAddr after Close: %v, want nil", a)
	}
	// The loop serves another connection afterwards; by then anything for
	// the closed one would have been seen too.
	r2 := newRecorder(t)
	c2, _ := adopt(t, p, ln, r2)
	c2.Write([]byte("y"))
	r2.waitData("y")
	if data, eofs, _ := r.state(); data != "" || eofs != 0 {
		t.Errorf("closed Socket's handler got %q and %d EOFs", data, eofs)
	}
}

// TestSocketCloseWrite: the peer reads the end of the stream and can
// still send.
func TestSocketCloseWrite(t *testing.T) {
	p := newPoller(t)
	r := newRecorder(t)
	c, sock := adopt(t, p, listen(t), r)
	if err := sock.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("peer read %v, want EOF", err)
	}
	c.Write([]byte("after"))
	r.waitData("after")
}

// TestSocketWriteWaits: a Write larger than the socket takes waits for the
// peer to read, and delivers every byte in order.
func TestSocketWriteWaits(t *testing.T) {
	p := newPoller(t)
	c, sock := adopt(t, p, listen(t), newRecorder(t))
	want := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16) // 8 MiB
	for i := range want {
		want[i] += byte(i / 4096)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := sock.Write(want)
		errc <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the peer read other bytes than were written")
	}
}

// TestSocketRawWrite: RawSocket's Write calls its function again, once
// the socket is writable, until it reports done.
func TestSocketRawWrite(t *testing.T) {
	p := newPoller(t)
	c, sock := adopt(t, p, listen(t), newRecorder(t))
	calls := 0
	err := sock.RawSocket().Write(func(fd uintptr) bool {
		calls++
		if calls == 1 {
			return false // as if the socket were full
		}
		_, err := syscall.Write(int(fd), []byte("!"))
		return err == nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Write: %v after %d calls, want nil after 2", err, calls)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "!" {
		t.Errorf("peer read %q, %v", buf, err)
	}
}

// TestSocketWriteDeadline: a Write the peer never makes room for fails
// with os.ErrDeadlineExceeded.
func TestSocketWriteDeadline(t *testing.T) {
	p := newPoller(t)
	_, sock := adopt(t, p, listen(t), newRecorder(t))
	full(t, sock)
	more := make([]byte, 16<<20) // more than the peer's and the socket's buffers hold
	sock.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := sock.Write(more); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write: %v, want os.ErrDeadlineExceeded", err)
	}
	// A deadline already past fails at once; clearing it makes Write wait
	// again (until Close, below).
	if _, err := sock.Write(more); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	sock.SetWriteDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := sock.Write(more)
		errc <- err
	}()
	sock.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write waiting at Close: %v, want net.ErrClosed", err)
	}
}

// TestPollerCloseWakesWriters: a Write waiting for room fails when the
// poller closes.
func TestPollerCloseWakesWriters(t *testing.T) {
	p, err := netpoll.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, sock := adopt(t, p, listen(t), newRecorder(t))
	full(t, sock)
	errc := make(chan error, 1)
	go func() {
		_, err := sock.Write(make([]byte, 16<<20))
		errc <- err
	}()
	// The Write may start waiting before or after Close: either way it
	// fails.
	p.Close()
	if err := <-errc; !errors.Is(err, netpoll.ErrClosed) {
		t.Errorf("Write: %v, want ErrClosed", err)
	}
}

// TestSocketCloseRaces: closing Sockets while they are read and written
// (run with -race) neither fails the loop nor lets a handler hear a
// socket twice at once; every peer sees its connection end (with a reset
// when the Socket had unread bytes).
func TestSocketCloseRaces(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	const n = 50
	var wg sync.WaitGroup
	peers := make([]*net.TCPConn, n)
	for i := range n {
		c, sock := adopt(t, p, ln, newRecorder(t))
		peers[i] = c
		wg.Add(3)
		go func() {
			defer wg.Done()
			for range 100 {
				if _, err := c.Write([]byte("ping")); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				if _, err := sock.Write([]byte("data")); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			sock.RemoteAddr()
			sock.Close()
		}()
	}
	wg.Wait()
	for i, c := range peers {
		c.SetReadDeadline(time.Now().Add(waitFor))
		if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("peer %d: %v, want the end of the stream", i, err)
		}
	}
}
