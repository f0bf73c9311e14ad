package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/auth"
	"github.com/wsdest/wsdest/internal/hub"
)

// sseStream serves an SSE client whose connection cannot be taken over
// (HTTP/2, behind TLS): the events go through net/http's ResponseWriter,
// wrapped as the hub's connection, and the handler's goroutine waits for
// the end of the stream, so such a client costs a goroutine. Its
// connection is out of the ConnGuard's count and reach meanwhile (it
// holds a client slot), and the answer's write deadline (WriteTimeout)
// covers the head; then each write of the hub has its own.
func (s *Server) sseStream(w http.ResponseWriter, r *http.Request, remote string, sub hub.Subscription, st wsdest.Start, p auth.Principal) {
	defer guardStream(r)()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sc := &streamConn{w: w, rc: http.NewResponseController(w), done: make(chan struct{}), remote: remoteAddr(r)}
	owner := s.viewOwner(r)
	_ = sc.SetWriteDeadline(s.writeDeadline()) // for the head and the retry line
	if _, err := sc.Write([]byte("retry: " + strconv.FormatInt(SSERetry.Milliseconds(), 10) + "\n\n")); err != nil {
		s.releaseView(sub.View, owner)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cw := s.watch(p)
	c := s.hub.AddClient(nil, hub.ClientOptions{
		Sub:       sub,
		Transport: hub.SSE{},
		OnClosed: func() {
			cancel()
			cw.stop()
			s.releaseView(sub.View, owner)
		},
		Park: st.Kind != wsdest.StartLatest,
	})
	cw.start(c, p)
	c.Attach(sc)
	s.rejects.connected(r.Context(), "transport", "sse", "proto", r.Proto, "id", c.ID(), "remote", remote, "path", r.URL.Path,
		"all", sub.All, "keys", len(sub.Keys), "shape", sub.Shape.String(), "resume", st.Kind != wsdest.StartLatest, "principal", p.ID)
	if st.Kind != wsdest.StartLatest {
		s.startResume(ctx, c, st)
	}
	select {
	case <-r.Context().Done():
		c.Abort(hub.ReasonClientClosed)
	case <-sc.done:
	}
	sc.finish()
}

// streamConn is an HTTP response body as a net.Conn for the hub's writer:
// each Write is written and flushed; Close ends the handler. Write and
// Close may be called from any goroutine; finish, called by the handler
// before it returns, waits for a Write in progress, after which nothing
// touches the ResponseWriter.
//
// A write deadline bounds the Writes that start before it passes, and
// nothing else: over HTTP/2 a response's write deadline resets the stream
// when it passes, written to or not, so the deadline is set on the
// response only for the length of each Write, and a stream that is idle
// for longer (between heartbeats) lives on.
type streamConn struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	remote net.Addr

	deadline atomic.Int64 // of the Writes that follow, unix ns; 0 = none

	mu     sync.Mutex // held by Write while it uses w
	closed bool       // guarded by mu
	once   sync.Once
	done   chan struct{} // closed by Close
}

func (c *streamConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	var dl time.Time
	if ns := c.deadline.Load(); ns != 0 {
		dl = time.Unix(0, ns)
	}
	if err := c.rc.SetWriteDeadline(dl); err != nil {
		return 0, err
	}
	defer func() { _ = c.rc.SetWriteDeadline(time.Time{}) }()
	n, err := c.w.Write(p)
	if err == nil {
		err = c.rc.Flush()
	}
	return n, err
}

// Close ends the stream; the handler returns.
func (c *streamConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

// finish makes later Writes fail and waits for one in progress.
func (c *streamConn) finish() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	_ = c.Close()
}

// Read blocks until the stream ends: the peer of an event stream sends
// nothing.
func (c *streamConn) Read([]byte) (int, error) {
	<-c.done
	return 0, io.EOF
}

func (c *streamConn) LocalAddr() net.Addr  { return c.remote }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

func (c *streamConn) SetDeadline(t time.Time) error   { return c.SetWriteDeadline(t) }
func (c *streamConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline sets the deadline of the Writes that follow (see
// streamConn).
func (c *streamConn) SetWriteDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	c.deadline.Store(ns)
	return nil
}

// remoteAddr parses the request's remote address, for logs.
func remoteAddr(r *http.Request) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr)
	if err != nil {
		return &net.TCPAddr{}
	}
	return a
}

var _ net.Conn = (*streamConn)(nil)
