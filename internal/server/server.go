// Package server is wsdest's HTTP layer: it parses a WebSocket or
// Server-Sent Events request (sse.go, sse_stream.go) into a subscription
// and a start position (resume.go: from=, last=, Last-Event-ID), checks its
// origin, limits and credentials, completes the handshake and hands the
// connection to the hub, and starts the catch-up of a client that asked for
// a position; it also serves the health endpoints, /metrics and, to
// browsers, the live viewer page of internal/web (viewer.go). It owns no
// fan-out state.
//
// What protects the listener lives beside it: authz.go (what a credential
// may read: an exact key outside its grant gets 403, and its clients are
// closed when a token expires or a key is revoked), origin.go (ALLOWED_ORIGINS),
// limits.go (client slots, per-address limits, trusted proxies, the
// subscription limits, and ConnGuard, which keeps descriptors for the HTTP
// endpoints however many connections are held open), reserved.go (the
// operational paths that are never /{key} subscriptions), reject.go (counted,
// rate-limited logging of refused requests), tls.go (the certificate pair,
// reloaded when its files change) and tlsread.go (TLS clients watched by the
// epoll loop and decrypted off it). Every answer that is not a stream has
// Config.WriteTimeout to be written. Every check that refuses a request
// answers before the WebSocket handshake, except a missing or bad
// credential, which gets the original connector's close 1008, with a
// reason that says what to do (refusal.go).
package server

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/boolval"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/netpoll"
	"github.com/wsdest/wsdest/internal/ratelog"
	"github.com/wsdest/wsdest/internal/ready"
	"github.com/wsdest/wsdest/internal/web"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// Defaults of the subscription limits (Config.MaxSubscriptionKeys and
// Config.MaxKeyLength) and of Config.WriteTimeout.
const (
	DefaultMaxSubscriptionKeys = 64
	DefaultMaxKeyLength        = 256
	DefaultWriteTimeout        = 10 * time.Second
)

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	// Auth checks credentials; nil lets every client in.
	Auth Authorizer
	// Envelope makes the envelope shape the default for clients that do
	// not say ?envelope=. Default false (plain values).
	Envelope bool
	// MaxClientMessage is the largest message a client may send; a larger
	// one closes the client with 1009. Default wsframe.DefaultMaxMessage
	// (4096 bytes).
	MaxClientMessage int
	// SocketSendBuffer sets SO_SNDBUF on client sockets; 0 keeps the
	// kernel's default (autotuned).
	SocketSendBuffer int
	// WriteTimeout bounds the writing of every answer that is not a
	// stream: the health endpoints, /metrics, /stats, the viewer and its
	// assets, refusals, and the WebSocket handshake's answer. A peer that
	// has not taken the answer by then is disconnected (over HTTP/2, its
	// stream is reset). Streams have their own deadline per write (the
	// hub's WriteTimeout). Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Compression offers permessage-deflate (RFC 7692, no context
	// takeover) to clients that ask for it; their frames are compressed
	// once per message and shape by the hub. Default false.
	Compression bool
	// Readiness returns the conditions that keep the service from
	// delivering records, none when it is ready (/readyz). Nil means
	// always ready.
	Readiness func() []ready.Condition
	// Stats, if set, is served as JSON at /stats.
	Stats func() any
	// Logger receives the server's log lines. Default slog.Default().
	Logger *slog.Logger

	// AllowedOrigins are the browser origins allowed to connect (see
	// config.Edge.AllowedOrigins); empty = every origin. A request with
	// another Origin gets 403 before the handshake; one without Origin is
	// not affected.
	AllowedOrigins []string
	// MaxConnections bounds the clients connected at once; over it a new
	// one gets 503 with Retry-After. 0 = no bound (the service passes one
	// derived from the open-file limit, see FileBudget).
	MaxConnections int
	// MaxConnectionsPerIP bounds the clients from one address (IPv6: its
	// /64); over it 429 with Retry-After. 0 = no bound.
	MaxConnectionsPerIP int
	// TrustedProxies are the peers whose X-Forwarded-For names the client
	// for MaxConnectionsPerIP and the logs. Default none.
	TrustedProxies []netip.Prefix
	// MaxSubscriptionKeys and MaxKeyLength bound a subscription; over
	// them the request gets 400 naming the limit. Defaults
	// DefaultMaxSubscriptionKeys and DefaultMaxKeyLength.
	MaxSubscriptionKeys int
	MaxKeyLength        int
	// Metrics, if set, is served at GET /metrics.
	Metrics http.Handler
	// Resumer serves clients that ask for a start position (from=,
	// last=, SSE Last-Event-ID); nil answers them 400.
	Resumer Resumer
	// Views makes the views of ?where= and ?fields=; nil answers them
	// 400.
	Views Views
	// Snapshot accepts snapshot=true (the Resumer serves it from the
	// table of latest values); false answers it 400. Default false.
	Snapshot bool
	// ViewerBasicAuth makes the viewer page ask a browser for HTTP Basic
	// credentials (401 with WWW-Authenticate) when its URL has no ?token=
	// and it sent none that Auth accepts: the browser then sends them on
	// the page's WebSocket too. Set it when WS_USERNAME/WS_PASSWORD are
	// configured. Default false.
	ViewerBasicAuth bool
	// NoViewer turns the browser viewer off: browsers get the 426 answer
	// like every other plain GET, and /_wsdest/ is not served. Default
	// false (the viewer is on).
	NoViewer bool
}

// Server serves WebSocket clients and health checks. It is safe for
// concurrent use.
type Server struct {
	cfg    Config
	hub    *hub.Hub
	poller *netpoll.Poller
	log    *slog.Logger
	mux    *http.ServeMux
	viewer *web.Viewer // nil when the viewer is off

	// Listener protection (origin.go, limits.go, reject.go).
	origins *originPolicy
	limits  *limits
	rejects *rejections

	resumeLog *ratelog.Limiter // failed catch-ups (resume.go): a line every 10 s

	revocations revocations // clients of revocable API keys (authz.go)
}

// New returns a server that adds clients to h and reads them with p.
func New(cfg Config, h *hub.Hub, p *netpoll.Poller) *Server {
	if cfg.MaxClientMessage <= 0 {
		cfg.MaxClientMessage = wsframe.DefaultMaxMessage
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxSubscriptionKeys <= 0 {
		cfg.MaxSubscriptionKeys = DefaultMaxSubscriptionKeys
	}
	if cfg.MaxKeyLength <= 0 {
		cfg.MaxKeyLength = DefaultMaxKeyLength
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	s := &Server{cfg: cfg, hub: h, poller: p, log: cfg.Logger, mux: http.NewServeMux()}
	s.origins = newOriginPolicy(cfg.AllowedOrigins)
	s.limits = newLimits(cfg.MaxConnections, cfg.MaxConnectionsPerIP)
	s.rejects = newRejections(cfg.Logger)
	s.resumeLog = ratelog.New(10*time.Second, 1)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Stats != nil {
		s.mux.HandleFunc("GET /stats", s.stats)
	}
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	s.mux.HandleFunc("GET /sse", s.sse)
	s.mux.HandleFunc("GET /sse/{key...}", s.sse)
	if !cfg.NoViewer {
		v, err := web.New()
		if err != nil {
			s.log.Error("viewer disabled", "err", err)
		} else {
			s.viewer = v
			s.mux.HandleFunc("GET "+web.AssetPrefix, v.ServeAsset)
		}
	}
	s.mux.HandleFunc("/", s.websocket)
	return s
}

// Rejections returns how many requests were refused, by reason; every
// reason is present.
func (s *Server) Rejections() map[RejectReason]uint64 { return s.rejects.counts() }

// ServeHTTP implements http.Handler. Every answer gets WriteTimeout from
// now to be written; a handler that takes its connection over (Hijack)
// loses that deadline with it, and sets its own (upgrade, sse).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	s.mux.ServeHTTP(w, r)
}

// writeDeadline returns the deadline of an answer written now.
func (s *Server) writeDeadline() time.Time { return time.Now().Add(s.cfg.WriteTimeout) }

// handOver sets the write deadline a client's connection keeps when the
// hub takes it over. A plain TCP socket keeps none: the hub's writer
// writes to it without waiting, and sets a deadline for each write that
// has to wait. A TLS connection keeps WriteTimeout from now: crypto/tls
// may write from within a read (an alert for a record that does not
// decrypt, the answer to a key update), and such a write must not wait
// for ever on a peer that does not read. The hub's writer sets a deadline
// before each of its own writes, and leaves it there, so a later write
// from within a read never waits past the last of them.
func (s *Server) handOver(conn net.Conn) {
	dl := time.Time{}
	if _, ok := conn.(*tls.Conn); ok {
		dl = s.writeDeadline()
	}
	_ = conn.SetWriteDeadline(dl)
}

// deadlineHijacker is a ResponseWriter whose Hijack sets a write deadline
// on the connection it returns: net/http clears the connection's deadlines
// when it lets go of it, and gobwas/ws writes the handshake's answer (or
// its refusal) right after.
type deadlineHijacker struct {
	http.ResponseWriter
	deadline time.Time
}

func (h deadlineHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		_ = conn.SetWriteDeadline(h.deadline)
	}
	return conn, rw, err
}

func (h deadlineHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers 200 "ready" or 503 with what is missing, one condition
// a line ("not ready: broker_unreachable: no Kafka broker answers: tried
// ..."), or as JSON when the request accepts application/json:
// {"ready":false,"conditions":[{"reason":"...","detail":"..."}]}.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var unmet []ready.Condition
	if s.cfg.Readiness != nil {
		unmet = s.cfg.Readiness()
	}
	status := http.StatusOK
	if len(unmet) > 0 {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(struct {
			Ready      bool              `json:"ready"`
			Conditions []ready.Condition `json:"conditions"`
		}{len(unmet) == 0, append([]ready.Condition{}, unmet...)})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if len(unmet) == 0 {
		_, _ = w.Write([]byte("ready\n"))
		return
	}
	var b strings.Builder
	for _, c := range unmet {
		fmt.Fprintf(&b, "not ready: %s: %s\n", c.Reason, c.Detail)
	}
	_, _ = w.Write([]byte(b.String()))
}

func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.cfg.Stats())
}

// ParseSubscription turns a WebSocket request's path and query into a
// subscription:
//
//	/ws, /ws/, /         every record
//	/ws/*, /*            every record
//	/ws/{key}, /{key}    records whose key is {key} (a pattern if it has * or ?)
//	?key=a&key=b-*       more keys or patterns; with /ws alone, only these
//	?envelope=true|false the envelope shape, or plain values
//
// defEnvelope is the shape when the query does not say.
func ParseSubscription(path string, query map[string][]string, defEnvelope bool) (hub.Subscription, error) {
	var sub hub.Subscription
	rest, ok := strings.CutPrefix(path, "/ws")
	if ok && (rest == "" || rest[0] == '/') {
		rest = strings.TrimPrefix(rest, "/")
	} else {
		rest = strings.TrimPrefix(path, "/")
	}
	if rest != "" {
		sub.Keys = append(sub.Keys, rest)
	}
	for _, k := range query["key"] {
		if k == "" {
			return sub, fmt.Errorf("empty key= parameter")
		}
		sub.Keys = append(sub.Keys, k)
	}
	sub.All = len(sub.Keys) == 0
	env := defEnvelope
	if v := query["envelope"]; len(v) > 0 {
		b, err := boolval.Parse(v[len(v)-1])
		if err != nil {
			return sub, fmt.Errorf("envelope=%w", err)
		}
		env = b
	}
	if env {
		sub.Shape = message.ShapeEnvelope
	}
	rate, err := parseMaxRate(query)
	if err != nil {
		return sub, err
	}
	sub.MaxRate = rate
	return sub, nil
}

func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	if !isUpgrade(r) {
		if r.Header.Get("Sec-WebSocket-Key") != "" {
			s.upgradeDropped(w, r)
			return
		}
		if s.viewer != nil && wantsViewer(r) {
			s.servePage(w, r)
			return
		}
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUpgradeRequired)
		fmt.Fprintf(w, "426 Upgrade Required: this is a WebSocket endpoint.\n"+
			"Open http://%[1]s/ in a browser for the live viewer, or connect with a WebSocket client, e.g. python3 -m websockets ws://%[1]s/ws\n"+
			"Paths: /ws (every record), /ws/{key} (one Kafka key), ?key=a&key=b-* (keys and patterns), ?envelope=true (with topic, partition, offset, key, headers), ?max_rate=N (at most N messages per key per second, latest wins).\n", r.Host)
		return
	}
	if Reserved(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	var st wsdest.Start
	a, ok := s.admit(w, r, func() (hub.Subscription, error) {
		var err error
		if st, err = s.parseStart(r, false); err != nil {
			return hub.Subscription{}, err
		}
		return ParseSubscription(r.URL.Path, r.URL.Query(), s.cfg.Envelope)
	})
	if !ok {
		return
	}
	p, authErr := s.authorize(r)
	if authErr != nil {
		conn, _, _, err := ws.UpgradeHTTP(r, deadlineHijacker{w, s.writeDeadline()})
		if err != nil {
			s.rejects.reject(r.Context(), RejectHandshake, a.remote, "websocket handshake failed", "err", err)
			closeHijacked(conn)
			a.slot.release()
			return
		}
		refusal := credentialRefusal(r, authErr)
		s.rejects.reject(r.Context(), RejectUnauthorized, a.remote, "client rejected: "+refusal, "path", r.URL.Path)
		go func() {
			defer a.slot.release()
			if refusal == wsframe.ReasonNotAccepted {
				rejectConn(conn, wsframe.ClosePolicyViolation, wsframe.ReasonNotAccepted)
			} else {
				rejectConn(conn, wsframe.ClosePolicyViolation, wsframe.ReasonNoCredential)
			}
		}()
		return
	}
	if !s.scope(w, r, &a, p) || !s.acquireView(w, r, &a) {
		return
	}
	sub, remote := a.sub, a.remote
	// The client joins the hub before the handshake is answered: whatever
	// is published once the client can see the answer reaches it.
	sess := &session{held: s.hold(r, &a, st, p), parser: wsframe.Parser{MaxMessage: s.cfg.MaxClientMessage}}
	sess.client = s.hub.AddClient(nil, hub.ClientOptions{Sub: sub, OnClosed: sess.closed,
		Park: st.Kind != wsdest.StartLatest})
	sess.watchCredential(p)
	up := ws.DefaultHTTPUpgrader
	var flate *wsflate.Extension
	if s.cfg.Compression {
		flate, up.Negotiate = newDeflate()
	}
	conn, rw, _, err := up.Upgrade(r, deadlineHijacker{w, s.writeDeadline()})
	if err != nil {
		// UpgradeHTTP has answered the client with the reason.
		s.rejects.reject(r.Context(), RejectHandshake, remote, "websocket handshake failed", "err", err)
		closeHijacked(conn)
		sess.client.Abort(hub.ReasonHandshake)
		return
	}
	s.handOver(conn)
	s.setSendBuffer(conn)
	if flate != nil {
		if _, ok := flate.Accepted(); ok {
			sess.parser.Deflate = true
			sess.client.UseDeflate()
		}
	}
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.rejects.connected(r.Context(), "id", sess.client.ID(), "remote", remote, "path", r.URL.Path,
			"all", sub.All, "keys", len(sub.Keys), "shape", sub.Shape.String(), "principal", p.ID)
	}
	// Bytes the client sent right after its handshake are already
	// buffered: they are parsed before the poller reads what follows.
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		sess.OnData(b)
	}
	s.attach(conn, &sess.held, sess, st)
	// The handler returns now: an idle client costs no goroutine, and
	// neither the request nor its buffers stay reachable.
}

// closeHijacked closes the connection a failed ws.UpgradeHTTP returns: it
// has been taken from the HTTP server, which no longer closes it, and
// gobwas/ws leaves it open after writing the error answer.
func closeHijacked(conn net.Conn) {
	if conn != nil {
		_ = conn.Close()
	}
}

// rejectConn sends a close frame on a connection that never joined the
// hub, waits briefly for the peer to hang up, and closes it.
func rejectConn(conn net.Conn, code uint16, reason string) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(wsframe.Close(code, reason)); err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else if tc, ok := conn.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	// Read until the peer closes so that the close frame is not lost to a
	// reset; what it sends is discarded.
	var buf [256]byte
	for {
		if _, err := conn.Read(buf[:]); err != nil {
			return
		}
	}
}

// session connects a client's reads to its hub.Client: it parses the
// client's frames, answers pings and handles the close handshake. The
// poller calls OnData and OnEOF from one goroutine at a time. It is what
// every idle WebSocket client keeps in the server (96 bytes).
type session struct {
	held
	parser wsframe.Parser
	failed bool // the client broke the protocol; later bytes are ignored
}

func (s *session) OnData(b []byte) {
	if s.failed {
		return
	}
	s.client.Touch()
	if err := s.parser.Feed(b, s); err != nil {
		s.failed = true
		why := hub.ReasonProtocol
		code, reason := wsframe.CloseProtocolError, wsframe.ReasonProtocolError
		if pe, ok := err.(*wsframe.ProtocolError); ok {
			code, reason = pe.Code, pe.Reason
			if pe.Code == wsframe.CloseMessageTooBig {
				why = hub.ReasonMessageTooBig
			}
		}
		s.client.Close(code, reason, why)
	}
}

// OnEOF drops the connection at once: the peer has hung up (after its
// close frame, or without one), so there is nobody left to send to.
func (s *session) OnEOF(err error) {
	if err != nil {
		s.client.Abort(hub.ReasonReadError)
		return
	}
	s.client.Abort(hub.ReasonClientClosed)
}

func (s *session) Ping(payload []byte) { s.client.Pong(payload) }

func (s *session) Pong() {}

func (s *session) CloseFrame(uint16, string) {
	s.failed = true // nothing may follow a close frame
	s.client.PeerClosed(hub.ReasonClientClosed)
}
