package server

import (
	"context"
	"net"
	"sync"

	"github.com/wsdest/wsdest/internal/history"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/netpoll"
)

// setSendBuffer applies SocketSendBuffer to a client's TCP socket.
func (s *Server) setSendBuffer(conn net.Conn) {
	if s.cfg.SocketSendBuffer > 0 {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(s.cfg.SocketSendBuffer)
		}
	}
}

// follow hands a client's connection, now attached to c, to the poller
// (h reads it, slot keeps the registration) and starts the catch-up of a
// client that asked for a start position. ctx ends when c is closed.
func (s *Server) follow(ctx context.Context, conn net.Conn, h netpoll.Handler, slot *watchSlot, c *hub.Client, st history.Start) {
	watch, err := s.poller.Watch(conn, h)
	if err != nil {
		c.Abort(hub.ReasonReadError)
		return
	}
	slot.setWatch(watch)
	if st.Kind != history.StartLatest {
		s.startResume(ctx, c, st)
	}
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
