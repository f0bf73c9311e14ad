package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/auth"
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

// held is what the server keeps for a client, from its admission until
// the hub has closed its connection (closed); session (WebSocket) and
// sseSession embed it. Every connection keeps it, so it is three pointers,
// and a plain-TCP client that reads from the latest record needs no more.
type held struct {
	client *hub.Client
	slot   *tally     // the connection slot, given back by closed
	extra  *heldExtra // nil unless the client is on TLS or catching up
}

// heldExtra is what only some clients need.
type heldExtra struct {
	// watch is the poller registration of the socket beneath a TLS
	// client (watchTLS).
	watch watchSlot
	// ctx ends when a client that asked for a start position is closed
	// (cancel, by closed): it bounds its catch-up. Nil for the others.
	ctx    context.Context
	cancel context.CancelFunc
	// cred closes the client when its credential expires or is revoked;
	// nil for credentials that do neither.
	cred *credWatch
	// views, set when the client has a view (hub.Client.View), gives it
	// back when the client is closed (a pointer, so that heldExtra stays
	// in its 80-byte size class for the clients without a view).
	views *viewHold
}

// hold prepares what a client about to join the hub keeps (its client is
// set by the caller, with closed as its OnClosed, and watchCredential
// called once it is).
func (s *Server) hold(r *http.Request, a *admission, st wsdest.Start, p auth.Principal) held {
	h := held{slot: a.slot}
	resuming := st.Kind != wsdest.StartLatest
	cred := s.watch(p)
	if r.TLS != nil || resuming || cred != nil || a.sub.View != nil {
		h.extra = &heldExtra{cred: cred}
		if a.sub.View != nil {
			h.extra.views = &viewHold{s: s, owner: s.viewOwner(r)}
		}
		if resuming {
			h.extra.ctx, h.extra.cancel = context.WithCancel(context.Background())
		}
	}
	return h
}

// watchCredential starts closing the client when its credential p ends.
func (h *held) watchCredential(p auth.Principal) {
	if h.extra != nil {
		h.extra.cred.start(h.client, p)
	}
}

// closed is the hub's OnClosed: it ends what the client held.
func (h *held) closed() {
	if e := h.extra; e != nil {
		e.cred.stop()
		e.watch.closed()
		if e.cancel != nil {
			e.cancel()
		}
		if e.views != nil {
			// h.client is set: the hub calls closed (OnClosed) only
			// after AddClient returned it.
			e.views.s.releaseView(h.client.View(), e.views.owner)
		}
	}
	h.slot.release()
}

// attach hands a client's connection, its handshake answered, to the
// poller and the hub (rd hears what the client sends), then starts the
// catch-up of a client that asked for a start position. A plain TCP
// connection becomes a netpoll.Socket, read by the epoll loop: the
// client then keeps none of net's per-connection state. A TLS client
// (WebSocket or SSE) is watched by the epoll loop too, and decrypted on a
// goroutine of its own while it has something to read (watchTLS); other
// connections the poller cannot read itself (a TLS connection not on a
// TLSListener, or where netpoll.Notify is not supported) get a reader
// goroutine.
func (s *Server) attach(conn net.Conn, h *held, rd netpoll.Handler, st wsdest.Start) {
	c := h.client
	if st.Kind != wsdest.StartLatest {
		defer s.startResume(h.extra.ctx, c, st)
	}
	if tc, ok := conn.(*tls.Conn); ok {
		c.Attach(conn)
		if h.extra != nil { // hold gives every TLS client extra
			if handled, err := s.watchTLS(tc, rd, &h.extra.watch); handled {
				if err != nil {
					c.Abort(hub.ReasonReadError)
				}
				return
			}
		}
		// A goroutine reader ends with the connection: nothing to forget.
		if _, err := s.poller.Watch(conn, rd); err != nil {
			c.Abort(hub.ReasonReadError)
		}
		return
	}
	adopted, err := s.poller.Adopt(conn, rd)
	if err != nil {
		closeHijacked(conn)
		c.Abort(hub.ReasonReadError)
		return
	}
	c.Attach(adopted)
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
