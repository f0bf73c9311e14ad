package server

import (
	"context"
	"crypto/tls"
	"net"
	"sync"

	"github.com/wsdest/wsdest/internal/history"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/netpoll"
)

// setSendBuffer applies SocketSendBuffer to a client's TCP socket (under
// TLS too).
func (s *Server) setSendBuffer(conn net.Conn) {
	if s.cfg.SocketSendBuffer > 0 {
		if tc, ok := tcpConn(conn); ok {
			_ = tc.SetWriteBuffer(s.cfg.SocketSendBuffer)
		}
	}
}

// follow hands a client's connection, now attached to c, to the poller
// (h reads it, slot keeps the registration) and starts the catch-up of a
// client that asked for a start position. ctx ends when c is closed.
// A WebSocket session over TLS is read from the epoll loop (watchTLS);
// other connections the poller cannot read itself get a reader goroutine.
func (s *Server) follow(ctx context.Context, conn net.Conn, h netpoll.Handler, slot *watchSlot, c *hub.Client, st history.Start) {
	if st.Kind != history.StartLatest {
		defer s.startResume(ctx, c, st)
	}
	if sess, ok := h.(*session); ok {
		if tc, ok := conn.(*tls.Conn); ok {
			if handled, err := s.watchTLS(tc, sess); handled {
				if err != nil {
					c.Abort(hub.ReasonReadError)
				}
				return
			}
		}
	}
	watch, err := s.poller.Watch(conn, h)
	if err != nil {
		c.Abort(hub.ReasonReadError)
		return
	}
	slot.setWatch(watch)
}

// watchSlot holds a client connection's poller registration, which is
// made after the client joined the hub: whichever of setWatch and closed
// comes second forgets the registration.
type watchSlot struct {
	mu    sync.Mutex
	watch netpoll.Watch // guarded by mu
	gone  bool          // the client is torn down; guarded by mu
}

func (s *watchSlot) setWatch(w netpoll.Watch) {
	s.mu.Lock()
	gone := s.gone
	if !gone {
		s.watch = w
	}
	s.mu.Unlock()
	if gone {
		w.Forget()
	}
}

// closed is the hub's callback once the connection is closed.
func (s *watchSlot) closed() {
	s.mu.Lock()
	s.gone = true
	w := s.watch
	s.mu.Unlock()
	w.Forget()
}
