package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"

	"github.com/wsdest/wsdest/internal/netpoll"
)

// TLS clients are watched by the shared epoll loop too, without a
// goroutine each while they are idle, but they are not decrypted on it:
// crypto/tls may write from within Read (an alert for a record that does
// not decrypt, the answer to a key update), and such a write waits for
// the connection's writer, which may itself wait up to WRITE_TIMEOUT for a
// peer that does not read (the write is bounded by the deadline the
// connection has then: handOver's, then that of the hub writer's last
// write). So the loop only announces that a TLS client's socket can be
// read (netpoll.Notify, one-shot); a goroutine of the client's own then
// decrypts whatever whole records have arrived, hands the plaintext to
// the client's handler (its WebSocket or SSE session), and ends when a
// read would block, rearming the announcement. A reader that blocks holds
// up its own client only, and the kernel's flow control pushes back on
// that client meanwhile. An SSE client over TLS (HTTP/1.1) sends nothing
// after its request: its reader runs when it hangs up, and sees the end
// of the stream.
//
// crypto/tls only reads through the net.Conn beneath it, so that
// connection is a feedConn: until the WebSocket handshake or the SSE head
// it is the TCP socket itself (the TLS handshake and the HTTP request are
// read as usual); after it, its reads do not wait (netpoll.ReadNow), and a
// read that would block returns netpoll.ErrWouldBlock, a temporary
// net.Error, which crypto/tls does not keep as the connection's error: the
// part of a record read so far stays in its buffer, and the next read
// continues it.

// TLSListener wraps the listener under a TLS server so that its
// connections can be watched by the epoll loop after the WebSocket
// handshake or the SSE head (see tlsReader). Use it only beneath tls.NewListener (or
// http.Server.ServeTLS): the plain path hands its *net.TCPConn to the
// poller, which adopts it (netpoll.Socket).
func TLSListener(ln net.Listener) net.Listener { return feedListener{ln} }

type feedListener struct{ net.Listener }

func (l feedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	return &feedConn{TCPConn: tc}, nil
}

// feedConn is a TCP connection whose reads can be switched from waiting
// reads to reads that do not wait. Writes always go to the socket.
type feedConn struct {
	*net.TCPConn
	// raw is the socket for reads that do not wait; set before polled,
	// once, after the handshake.
	raw    syscall.RawConn
	polled atomic.Bool
}

func (c *feedConn) Read(b []byte) (int, error) {
	if !c.polled.Load() {
		return c.TCPConn.Read(b)
	}
	return netpoll.ReadNow(c.raw, b)
}

// tlsReader is the poller's Notifier for a TLS client: it decrypts what
// arrived and passes the plaintext to the client's handler (a WebSocket
// session, an SSE session), from a goroutine started for each
// announcement. One runs at a time (the next announcement comes after its
// Rearm), so the handler is called from one goroutine at a time.
type tlsReader struct {
	tls   *tls.Conn
	h     netpoll.Handler
	ended bool // h heard OnEOF; owned by the running reader
}

// watchTLS registers a TLS client with the poller when it sits on a
// feedConn (slot keeps the registration), and reports whether it did; the
// caller falls back to the poller's goroutine-per-connection reader
// otherwise.
func (s *Server) watchTLS(conn *tls.Conn, h netpoll.Handler, slot *watchSlot) (bool, error) {
	fc, ok := conn.NetConn().(*feedConn)
	if !ok || !netpoll.CanNotify {
		return false, nil
	}
	raw, err := fc.SyscallConn()
	if err != nil {
		return false, nil
	}
	r := &tlsReader{tls: conn, h: h}
	fc.raw = raw
	fc.polled.Store(true)
	// Records that arrived with the handshake may already sit in the
	// tls.Conn's buffer, where no poller event would announce them.
	if !r.drain() {
		return true, nil
	}
	watch, err := s.poller.Notify(fc.TCPConn, r)
	if err != nil {
		return true, err
	}
	slot.setWatch(watch)
	return true, nil
}

// Readable is called on the poller's goroutine: the reading happens on
// one of the client's own.
func (r *tlsReader) Readable(w netpoll.Watch) { go r.read(w) }

// read decrypts what arrived, then asks for the next announcement.
func (r *tlsReader) read(w netpoll.Watch) {
	if !r.drain() {
		return
	}
	if err := w.Rearm(); err != nil {
		r.end(err) // the connection is closed: the client is gone already
	}
}

// drain decrypts every whole record available and hands the plaintext
// on. It reports whether more may come: false once the handler has heard
// OnEOF.
func (r *tlsReader) drain() bool {
	var buf [512]byte // plaintext; clients send only small control frames
	for !r.ended {
		n, err := r.tls.Read(buf[:])
		if n > 0 {
			r.h.OnData(buf[:n])
		}
		switch {
		case err == nil:
		case errors.Is(err, netpoll.ErrWouldBlock):
			return true
		case errors.Is(err, io.EOF): // close_notify, or the end of the stream
			r.end(nil)
		default:
			r.end(err)
		}
	}
	return false
}

func (r *tlsReader) end(err error) {
	if r.ended {
		return
	}
	r.ended = true
	r.h.OnEOF(err)
}
