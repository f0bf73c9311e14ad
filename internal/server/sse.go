package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
)

// SSERetry is the reconnection delay wsdest asks EventSource clients for.
const SSERetry = 2 * time.Second

// sseHead is the response head of an event stream: the connection is
// taken over after it, the stream delimited by the connection's close.
var sseHead = []byte("HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Cache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\n" +
	"Connection: close\r\n" +
	"\r\n" +
	fmt.Sprintf("retry: %d\n\n", SSERetry.Milliseconds()))

// sseSubscription parses an SSE request's path (/sse, /sse/{key}) and query
// like a WebSocket request's, with the SSE shapes.
func sseSubscription(path string, query map[string][]string, defEnvelope bool) (hub.Subscription, error) {
	rest := strings.TrimPrefix(path, "/sse")
	sub, err := ParseSubscription("/ws"+rest, query, defEnvelope)
	if err != nil {
		return sub, err
	}
	if sub.Shape == message.ShapeEnvelope {
		sub.Shape = message.ShapeSSEEnvelope
	} else {
		sub.Shape = message.ShapeSSEPlain
	}
	return sub, nil
}

// sse serves GET /sse and /sse/{key}: the same subscriptions, start
// positions and credentials as WebSocket, as Server-Sent Events. Over
// HTTP/1.1 the connection is taken from net/http once the head is written;
// the hub writes the events and the poller watches for the client hanging
// up (over TLS too, see watchTLS), so an idle SSE client costs no
// goroutine. Over HTTP/2 (TLS) the stream stays with net/http (sseStream),
// and costs net/http's goroutines for the connection and the stream.
func (s *Server) sse(w http.ResponseWriter, r *http.Request) {
	// Origins, start positions, connection limits and subscription limits
	// as for WebSocket.
	var st wsdest.Start
	a, ok := s.admit(w, r, func() (hub.Subscription, error) {
		var err error
		if st, err = s.parseStart(r, true); err != nil {
			return hub.Subscription{}, err
		}
		return sseSubscription(r.URL.Path, r.URL.Query(), s.cfg.Envelope)
	})
	if !ok {
		return
	}
	p, authErr := s.authorize(r)
	if authErr != nil {
		a.slot.release()
		if b, ok := s.cfg.Auth.(interface{ BasicConfigured() bool }); ok && b.BasicConfigured() {
			w.Header().Set("WWW-Authenticate", `Basic realm="wsdest", charset="UTF-8"`)
		}
		refusal := credentialRefusal(r, authErr)
		s.rejects.reject(r.Context(), RejectUnauthorized, a.remote, "client rejected: "+refusal, "path", r.URL.Path)
		http.Error(w, refusal, http.StatusUnauthorized)
		return
	}
	if !s.scope(w, r, &a, p) || !s.acquireView(w, r, &a) {
		return
	}
	sub := a.sub
	hj, ok := w.(http.Hijacker)
	if !ok || r.ProtoMajor != 1 {
		defer a.slot.release()
		s.sseStream(w, r, a.remote, sub, st, p)
		return
	}
	sess := &sseSession{held: s.hold(r, &a, st, p)}
	resuming := st.Kind != wsdest.StartLatest
	sess.client = s.hub.AddClient(nil, hub.ClientOptions{
		Sub:       sub,
		Transport: hub.SSE{},
		OnClosed:  sess.closed,
		Park:      resuming,
	})
	sess.watchCredential(p)
	conn, brw, err := hj.Hijack()
	if err != nil {
		s.rejects.reject(r.Context(), RejectHandshake, a.remote, "sse: hijack failed", "err", err)
		closeHijacked(conn)
		sess.client.Abort(hub.ReasonHandshake)
		return
	}
	s.setSendBuffer(conn)
	_ = conn.SetWriteDeadline(s.writeDeadline())
	if _, err := conn.Write(sseHead); err != nil {
		closeNow(conn)
		sess.client.Abort(hub.ReasonHandshake)
		return
	}
	s.handOver(conn)
	s.rejects.connected(r.Context(), "transport", "sse", "id", sess.client.ID(), "remote", a.remote, "path", r.URL.Path,
		"all", sub.All, "keys", len(sub.Keys), "shape", sub.Shape.String(), "resume", resuming, "principal", p.ID)
	_ = brw // a client sends nothing after its request; what it sends is ignored
	s.attach(conn, &sess.held, sess, st)
}

// sseSession watches an SSE client's connection for its end; what the
// client sends is ignored.
type sseSession struct {
	held
}

// OnData ignores what the client sends.
func (s *sseSession) OnData([]byte) {}

// OnEOF drops the client: it hung up.
func (s *sseSession) OnEOF(err error) {
	if err != nil {
		s.client.Abort(hub.ReasonReadError)
		return
	}
	s.client.Abort(hub.ReasonClientClosed)
}
