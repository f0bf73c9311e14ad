// Package netpoll reads many idle connections without a goroutine each.
//
// Clients of wsdest almost never send anything (pongs, a close frame), yet
// each connection must be read to notice those and a hang-up. A goroutine
// blocked in Read per connection costs at least a stack (2–8 KiB) for the
// whole life of an idle client; on Linux this package instead registers the
// sockets with one epoll instance and reads whichever become readable, from
// a single goroutine, into one shared buffer. Connections that are not plain
// sockets (a *tls.Conn handed over as such, tests' pipes) and other systems
// fall back to a goroutine per connection with a small buffer.
//
// A connection whose reading may block (crypto/tls writes an alert, or
// answers a key update, from within Read) is registered with Notify
// instead: the loop only tells its owner that it can be read, once, and
// the owner reads it without waiting on a goroutine of its own, which
// exists only while there is something to read, then rearms the
// notification (internal/server/tlsread.go). Nothing that blocks ever runs
// on the loop's goroutine.
//
// Watch reads a connection its owner keeps using. Adopt takes a
// *net.TCPConn over for good (Linux): it becomes a Socket, a bare
// non-blocking descriptor of 48 bytes read by the loop and written by its
// owner, so that an idle connection no longer keeps net's state for it
// (netFD, addresses: about 380 bytes of heap) nor the runtime's poll
// descriptor (512 bytes outside the heap).
package netpoll

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Handler receives what the poller reads from one connection. Its methods
// are called from one goroutine at a time for a given connection, and must
// not block: they run on the goroutine that serves every connection.
type Handler interface {
	// OnData is called with bytes read; b is only valid during the call.
	OnData(b []byte)
	// OnEOF is called once, when the peer closed its side or a read
	// failed; no call follows it. err is nil for a clean end of stream.
	OnEOF(err error)
}

// Notifier hears that a connection registered with Poller.Notify can be
// read; the poller does not read it.
type Notifier interface {
	// Readable is called from the poller's goroutine, which serves every
	// connection, so it must not block: it hands the read to a goroutine
	// of the connection's own, which reads with ReadNow and calls
	// w.Rearm when a read would block. No call follows until then.
	Readable(w Watch)
}

// ErrWouldBlock is what ReadNow returns when the socket holds nothing
// now. It is a net.Error whose Timeout and Temporary report true, so that
// a reader over the connection (crypto/tls) keeps the part of a record it
// has read and continues it on the next call.
var ErrWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "netpoll: nothing to read yet" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// ErrClosed is returned by Watch after Close.
var ErrClosed = errors.New("netpoll: poller closed")

// fallbackBuf is the read buffer of a goroutine-per-connection reader:
// small, since clients only send control frames.
const fallbackBuf = 512

// watchGoroutine reads conn from a goroutine of its own until EOF.
func watchGoroutine(conn net.Conn, h Handler, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, fallbackBuf)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				h.OnData(buf[:n])
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				h.OnEOF(err)
				return
			}
		}
	}()
}
