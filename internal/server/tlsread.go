package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
)

// TLS clients are read from the shared epoll loop too, without a goroutine
// each. crypto/tls only reads through the net.Conn beneath it, so that
// connection is a feedConn: until the WebSocket handshake it is the TCP
// socket itself (the TLS handshake and the HTTP request are read as
// usual); after it, the poller reads the socket's bytes (ciphertext) and
// hands them to tlsReader.OnData, which lends them to the feedConn and has
// the tls.Conn decrypt whatever whole records they complete. When the lent
// bytes run out, feedConn.Read returns errWouldBlock, a temporary
// net.Error, which crypto/tls does not keep as the connection's error: the
// part of a record read so far stays in its buffer, and the next bytes from
// the poller continue it.

// TLSListener wraps the listener under a TLS server so that its
// connections can be read from the epoll loop after the WebSocket
// handshake (see tlsReader). Use it only beneath tls.NewListener (or
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

// feedConn is a TCP connection whose reads can be switched from the socket
// to bytes lent by the poller. Writes always go to the socket.
type feedConn struct {
	*net.TCPConn
	fed atomic.Bool // reads come from lent; set once, after the handshake
	// lent is the poller's buffer during one tlsReader.OnData call; only
	// that call's goroutine touches it.
	lent []byte
}

// errWouldBlock ends a read of the lent bytes. Temporary, so crypto/tls
// does not keep it as the connection's error.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "no more bytes from the poller yet" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

func (c *feedConn) Read(b []byte) (int, error) {
	if !c.fed.Load() {
		return c.TCPConn.Read(b)
	}
	if len(c.lent) == 0 {
		return 0, errWouldBlock
	}
	n := copy(b, c.lent)
	c.lent = c.lent[n:]
	return n, nil
}

// tlsReader is the poller's handler for a TLS client: it decrypts what the
// poller reads and passes the plaintext to the WebSocket session. The
// poller calls it from one goroutine at a time.
type tlsReader struct {
	tls   *tls.Conn
	under *feedConn
	sess  *session
	buf   [512]byte // plaintext; clients send only small control frames
	ended bool
}

// watchTLS registers a TLS client with the poller, reading it from the
// epoll loop when it sits on a feedConn (slot keeps the registration), and
// reports whether it did; the caller falls back to the poller's
// goroutine-per-connection reader otherwise.
func (s *Server) watchTLS(conn *tls.Conn, sess *session, slot *watchSlot) (bool, error) {
	fc, ok := conn.NetConn().(*feedConn)
	if !ok {
		return false, nil
	}
	r := &tlsReader{tls: conn, under: fc, sess: sess}
	fc.fed.Store(true)
	// Records that arrived with the handshake may already sit in the
	// tls.Conn's buffer, where no poller event would announce them.
	r.drain()
	watch, err := s.poller.Watch(fc.TCPConn, r)
	if err != nil {
		return true, err
	}
	slot.setWatch(watch)
	return true, nil
}

func (r *tlsReader) OnData(b []byte) {
	if r.ended {
		return
	}
	r.under.lent = b
	r.drain()
	r.under.lent = nil
}

// drain decrypts every whole record available and hands the plaintext on.
func (r *tlsReader) drain() {
	for !r.ended {
		n, err := r.tls.Read(r.buf[:])
		if n > 0 {
			r.sess.OnData(r.buf[:n])
		}
		switch {
		case err == nil:
		case errors.Is(err, errWouldBlock):
			return
		case errors.Is(err, io.EOF): // close_notify
			r.end(nil)
		default:
			r.end(err)
		}
	}
}

func (r *tlsReader) OnEOF(err error) { r.end(err) }

func (r *tlsReader) end(err error) {
	if r.ended {
		return
	}
	r.ended = true
	r.sess.OnEOF(err)
}
