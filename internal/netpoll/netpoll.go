// Package netpoll reads many idle connections without a goroutine each.
//
// Clients of wsdest almost never send anything (pongs, a close frame), yet
// each connection must be read to notice those and a hang-up. A goroutine
// blocked in Read per connection costs at least a stack (2–8 KiB) for the
// whole life of an idle client; on Linux this package instead registers the
// sockets with one epoll instance and reads whichever become readable, from
// a single goroutine, into one shared buffer. Connections that are not plain
// sockets (a *tls.Conn handed over as such, tests' pipes) and other systems
// fall back to a goroutine per connection with a small buffer; the server
// hands over the TCP socket under a TLS client instead, and decrypts what
// this package reads (internal/server/tlsread.go).
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
