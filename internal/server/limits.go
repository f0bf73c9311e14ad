package server

import (
	"container/list"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdest/wsdest/internal/hub"
)

// FileBudget splits the process's open-file limit nofile between clients
// and everything else. It keeps a reserve of nofile/8, at least 64 and at
// most 1024 descriptors; half of it is for HTTP connections that have not
// become clients (health probes, /metrics scrapes, handshakes in flight:
// see ConnGuard), the other half for the Kafka client's connections, the
// listeners, the epoll descriptor and log files. maxClients is what is left.
// With the usual container limit of 1,048,576 that is 1,047,552 clients and
// 512 HTTP connections; with 1024, 896 and 64.
func FileBudget(nofile int) (maxClients, httpConns int) {
	reserve := min(max(nofile/8, 64), 1024)
	return max(nofile-reserve, 1), max(reserve/2, 1)
}

// retryAfter is the Retry-After of a 503 or 429 answer, in seconds: long
// enough that a retrying client does not hammer a full server, short
// enough that it gets in soon after a slot frees up.
const retryAfter = "5"

// limits counts admitted clients, globally and per address. A slot is
// taken before the handshake and given back when the connection is closed.
// It is safe for concurrent use.
type limits struct {
	max   int // 0 = no global limit
	perIP int // 0 = no per-address limit

	open atomic.Int64 // admitted clients now
	// shared is the tally every client holds when there is no
	// per-address limit; its key and n are unused.
	shared tally

	mu   sync.Mutex
	byIP map[netip.Addr]*tally // guarded by mu; only with perIP > 0
}

// tally is what a client holds while it has a connection slot: the count
// of clients from its address, or limits.shared. The clients from one
// address share it, so a client's slot costs it one pointer.
type tally struct {
	l   *limits
	key netip.Addr // the address (perIPKey) counted
	n   int        // clients from key; guarded by l.mu
}

func newLimits(max, perIP int) *limits {
	l := &limits{max: max, perIP: perIP, byIP: make(map[netip.Addr]*tally)}
	l.shared.l = l
	return l
}

// acquire takes a slot for a client from ip. It returns the rejection
// reason when a limit is reached, and otherwise the tally whose release
// gives the slot back (call it exactly once).
func (l *limits) acquire(ip netip.Addr) (*tally, RejectReason) {
	if n := l.open.Add(1); l.max > 0 && n > int64(l.max) {
		l.open.Add(-1)
		return nil, RejectMaxConnections
	}
	if l.perIP <= 0 {
		return &l.shared, ""
	}
	ip = perIPKey(ip)
	l.mu.Lock()
	t := l.byIP[ip]
	if t == nil {
		t = &tally{l: l, key: ip}
		l.byIP[ip] = t
	}
	if t.n >= l.perIP {
		l.mu.Unlock()
		l.open.Add(-1)
		return nil, RejectMaxConnectionsPerIP
	}
	t.n++
	l.mu.Unlock()
	return t, ""
}

// release gives back a slot acquire returned.
func (t *tally) release() {
	l := t.l
	if t != &l.shared {
		l.mu.Lock()
		if t.n--; t.n <= 0 {
			delete(l.byIP, t.key)
		}
		l.mu.Unlock()
	}
	l.open.Add(-1)
}

// perIPKey is what MAX_CONNECTIONS_PER_IP counts by: an IPv4 address, or
// an IPv6 address's /64, since one subscriber line or host usually holds a
// whole /64 and could otherwise take a slot per address.
func perIPKey(ip netip.Addr) netip.Addr {
	if ip.Is6() && !ip.Is4In6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// clientAddr returns the address a request comes from: its peer, or, when
// the peer is a trusted proxy, the right-most address of X-Forwarded-For
// that is not itself a trusted proxy.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := addrOf(r.RemoteAddr)
	if len(trusted) == 0 || !inPrefixes(peer, trusted) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := parseHop(parts[j])
			if err != nil {
				return peer // a hop we cannot read: trust nothing before it
			}
			if a = a.Unmap(); !inPrefixes(a, trusted) {
				return a
			}
		}
	}
	return peer
}

// parseHop reads one X-Forwarded-For entry: an address, or, as some
// proxies write it, an address with a port ("192.0.2.1:4711",
// "[2001:db8::1]:4711") or a bracketed IPv6 address without one.
func parseHop(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), nil
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return netip.ParseAddr(s[1 : len(s)-1])
	}
	return netip.Addr{}, fmt.Errorf("not an address: %q", s)
}

func addrOf(hostport string) netip.Addr {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// checkSubscription enforces MAX_SUBSCRIPTION_KEYS and MAX_KEY_LENGTH, so
// that no client can make routing (a pattern test per record and pattern)
// expensive for everyone.
func (s *Server) checkSubscription(sub hub.Subscription) error {
	if n := len(sub.Keys); n > s.cfg.MaxSubscriptionKeys {
		return fmt.Errorf("%d keys and patterns requested, at most %d allowed (MAX_SUBSCRIPTION_KEYS)", n, s.cfg.MaxSubscriptionKeys)
	}
	for _, k := range sub.Keys {
		if len(k) > s.cfg.MaxKeyLength {
			return fmt.Errorf("a key or pattern of %d bytes requested, at most %d allowed (MAX_KEY_LENGTH)", len(k), s.cfg.MaxKeyLength)
		}
	}
	return nil
}

// admission is a request that passed admit.
type admission struct {
	sub    hub.Subscription
	remote string // for log lines: the peer, or "client via peer" behind a trusted proxy
	slot   *tally // the connection slot; give it back once (release)
}

// admit runs the checks every would-be client passes before its
// transport's handshake, whatever the transport (WebSocket here; SSE in
// its own handler): the origin, the subscription (parsed by parse) and its
// limits, and a connection slot. On refusal it has answered the request
// (403, 400, 503 or 429), counted and logged it, and reports false.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, parse func() (hub.Subscription, error)) (admission, bool) {
	ip := clientAddr(r, s.cfg.TrustedProxies)
	remote := r.RemoteAddr
	if ip != addrOf(r.RemoteAddr) {
		remote = ip.String() + " via " + r.RemoteAddr
	}
	if !s.origins.allowed(r) {
		s.rejects.reject(r.Context(), RejectOrigin, remote, "client rejected: origin not allowed", "origin", clip(r.Header.Get("Origin"), 100))
		http.Error(w, "403 Forbidden: this origin may not connect (ALLOWED_ORIGINS)", http.StatusForbidden)
		return admission{}, false
	}
	sub, err := parse()
	if err == nil {
		err = s.checkSubscription(sub)
	}
	if err != nil {
		s.rejects.reject(r.Context(), RejectBadRequest, remote, "client rejected: bad subscription", "err", err)
		http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
		return admission{}, false
	}
	slot, why := s.limits.acquire(ip)
	if why != "" {
		s.rejects.reject(r.Context(), why, remote, "client rejected: connection limit")
		tooMany(w, why)
		return admission{}, false
	}
	return admission{sub: sub, remote: remote, slot: slot}, true
}

// tooMany answers a request over a connection limit, before the handshake.
func tooMany(w http.ResponseWriter, why RejectReason) {
	w.Header().Set("Retry-After", retryAfter)
	if why == RejectMaxConnectionsPerIP {
		http.Error(w, "429 Too Many Requests: too many connections from your address (MAX_CONNECTIONS_PER_IP)", http.StatusTooManyRequests)
		return
	}
	http.Error(w, "503 Service Unavailable: the server is at its connection limit (MAX_CONNECTIONS)", http.StatusServiceUnavailable)
}

// ConnGuard bounds the HTTP connections that are not (yet) clients, so
// that however many connections an attacker opens and holds, the process
// keeps descriptors for health probes, scrapes and the Kafka client. Wire
// it into the http.Server with ConnState and ConnContext, and its Handler
// around the server's handler.
//
// At the bound, a new connection is always let in, and makes room by
// closing a connection of the peer address holding the most of them (an
// IPv6 address counts by its /64, as for MAX_CONNECTIONS_PER_IP; the peer
// is the TCP peer, so behind a proxy every connection has the proxy's).
// Among the connections of the addresses holding that many, it closes, in
// this order of preference:
//
//  1. the connection waiting longest for its client: an idle keep-alive
//     connection, or one accepted more than Grace ago that has not sent a
//     request (a silent or slow client, a TLS handshake in progress);
//  2. the connection whose request has been in a handler longest, if that
//     is more than Grace: a handler stalled writing to a peer that does
//     not read (its write deadline, Config.WriteTimeout, ends it anyway);
//  3. the oldest connection accepted less than Grace ago that has not sent
//     a request;
//  4. the connection whose request has been in a handler longest.
//
// So a prober's request, sent with its connection and answered at once, is
// served while a flood of held connections, silent or stalled in a
// handler, evicts itself, and a second probe arriving at the same moment
// does not close the first. A flood of new connections from one address
// (or a few) closes its own, however fast it comes: a probe from another
// address is closed only once the flood's addresses hold no more
// connections each than the probe's. Only a flood from as many addresses
// as the guard holds connections, turning the whole guard over before a
// probe's request is read, closes it. Closing a connection in a handler
// fails the handler's writes, which then ends. Hijacked connections
// (WebSocket and SSE clients) leave the guard, and a connection that
// carries an SSE stream over HTTP/2 is neither counted nor closed while it
// does: the limits on clients are MAX_CONNECTIONS and
// MAX_CONNECTIONS_PER_IP.
//
// Choosing a victim looks at every address holding connections, at most
// max of them, under the guard's lock; it runs only when the guard is full.
// Its methods are safe for concurrent use.
type ConnGuard struct {
	max     int
	evicted atomic.Uint64
	now     func() time.Time // time.Now; tests set another clock

	mu sync.Mutex
	// counted is the number of connections in the guard but those
	// carrying a stream; peers holds, by address (perIPKey), the
	// connections in the guard from it; conns every connection in the
	// guard. Guarded by mu.
	counted int
	peers   map[netip.Addr]*peerConns
	conns   map[net.Conn]*guarded
}

// peerConns is the connections in the guard from one address (perIPKey).
// Its fields are guarded by the guard's mu.
type peerConns struct {
	key netip.Addr
	// The connections but those carrying a stream, each in one list by
	// what it is doing, oldest first (by guarded.since): fresh (accepted,
	// no request yet), idle (between requests), serving (a request in a
	// handler). They hold *guarded.
	fresh, idle, serving *list.List
	counted              int // fresh, idle and serving together
	conns                int // in the guard, streams included; at 0 it leaves peers
}

// Grace is how long the ConnGuard spares a new connection that has not
// sent its request, and a request in a handler, while another connection
// can be closed instead.
const Grace = time.Second

// guarded is a connection in the guard; its fields are guarded by the
// guard's mu.
type guarded struct {
	g        *ConnGuard
	peer     *peerConns
	conn     net.Conn
	el       *list.Element // in list; nil while streams > 0 or once it left
	list     *list.List    // peer.fresh, peer.idle or peer.serving
	since    time.Time     // when it joined list
	requests int           // requests in a handler now
	streams  int           // SSE streams over HTTP/2 it carries now
	gone     bool          // it left the guard (closed, hijacked or evicted)
}

type guardKey struct{}

// NewConnGuard returns a guard for at most max HTTP connections (see
// FileBudget).
func NewConnGuard(max int) *ConnGuard {
	return &ConnGuard{max: max, now: time.Now, peers: make(map[netip.Addr]*peerConns),
		conns: make(map[net.Conn]*guarded)}
}

// Evicted returns how many connections the guard has closed.
func (g *ConnGuard) Evicted() uint64 { return g.evicted.Load() }

// ConnContext is the http.Server's ConnContext: it registers c, closing
// another connection if the guard is full (see ConnGuard).
func (g *ConnGuard) ConnContext(ctx context.Context, c net.Conn) context.Context {
	now := g.now()
	key := perIPKey(addrOf(c.RemoteAddr().String()))
	var victim *guarded
	g.mu.Lock()
	if g.counted >= g.max && g.counted > 0 {
		victim = g.victimLocked(now)
		victim.leaveLocked()
	}
	p := g.peers[key]
	if p == nil {
		p = &peerConns{key: key, fresh: list.New(), idle: list.New(), serving: list.New()}
		g.peers[key] = p
	}
	p.conns++
	e := &guarded{g: g, peer: p, conn: c}
	e.linkLocked(p.fresh, now)
	g.conns[c] = e
	g.mu.Unlock()
	if victim != nil {
		g.evicted.Add(1)
		closeNow(victim.conn)
	}
	return context.WithValue(ctx, guardKey{}, e)
}

// victimLocked returns the connection to close for a newcomer, in the
// order ConnGuard gives. The guard must be full. g.mu must be held.
func (g *ConnGuard) victimLocked(now time.Time) *guarded {
	var best *guarded
	bestRank, most := 0, 0
	for _, p := range g.peers {
		if p.counted < most || p.counted == 0 {
			continue
		}
		e, rank := p.candidate(now)
		if p.counted > most || rank < bestRank || rank == bestRank && e.since.Before(best.since) {
			best, bestRank, most = e, rank, p.counted
		}
	}
	return best
}

// candidate returns the connection of p that ConnGuard's order closes
// first, and its rank in that order (1 to 4). p must hold a counted
// connection. g.mu must be held.
func (p *peerConns) candidate(now time.Time) (*guarded, int) {
	f, i, s := front(p.fresh), front(p.idle), front(p.serving)
	if f != nil && now.Sub(f.since) >= Grace && (i == nil || f.since.Before(i.since)) {
		return f, 1
	}
	if i != nil {
		return i, 1
	}
	if s != nil && now.Sub(s.since) >= Grace {
		return s, 2
	}
	if f != nil {
		return f, 3
	}
	return s, 4
}

// front returns the oldest connection of l, or nil.
func front(l *list.List) *guarded {
	if el := l.Front(); el != nil {
		return el.Value.(*guarded)
	}
	return nil
}

// linkLocked appends e to l, one of its peer's lists, as of now. g.mu
// must be held.
func (e *guarded) linkLocked(l *list.List, now time.Time) {
	e.el, e.list, e.since = l.PushBack(e), l, now
	e.peer.counted++
	e.g.counted++
}

// unlinkLocked takes e out of its list, if it is in one. g.mu must be
// held.
func (e *guarded) unlinkLocked() {
	if e.el != nil {
		e.list.Remove(e.el)
		e.el, e.list = nil, nil
		e.peer.counted--
		e.g.counted--
	}
}

// leaveLocked takes e out of the guard, once. g.mu must be held.
func (e *guarded) leaveLocked() {
	e.unlinkLocked()
	e.gone = true
	delete(e.g.conns, e.conn)
	if e.peer.conns--; e.peer.conns == 0 {
		delete(e.g.peers, e.peer.key)
	}
}

// closeNow closes c without writing to it: for a TLS connection, the
// socket under it, since tls.Conn.Close may wait seconds to send its
// close_notify to a peer that does not read, and this runs on the
// server's accept loop.
func closeNow(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	_ = c.Close()
}

// ConnState is the http.Server's ConnState: a closed or hijacked
// connection leaves the guard.
func (g *ConnGuard) ConnState(c net.Conn, st http.ConnState) {
	if st != http.StateClosed && st != http.StateHijacked {
		return
	}
	g.mu.Lock()
	if e, ok := g.conns[c]; ok {
		e.leaveLocked()
	}
	g.mu.Unlock()
}

// Handler records the requests that next handles: a connection is
// serving while one is in a handler, then idle.
func (g *ConnGuard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e, ok := r.Context().Value(guardKey{}).(*guarded); ok {
			e.request(1)
			defer e.request(-1)
		}
		next.ServeHTTP(w, r)
	})
}

// request counts a request entering (+1) or leaving (-1) a handler, and
// moves e between the serving and idle lists.
func (e *guarded) request(d int) {
	g := e.g
	g.mu.Lock()
	e.requests += d
	if e.el != nil {
		switch {
		case e.requests > 0 && e.list != e.peer.serving:
			e.unlinkLocked()
			e.linkLocked(e.peer.serving, g.now())
		case e.requests == 0:
			e.unlinkLocked()
			e.linkLocked(e.peer.idle, g.now())
		}
	}
	g.mu.Unlock()
}

// guardStream takes the connection of r out of the guard's count and out
// of its reach until the returned function is called: for a response that
// is a stream (SSE over HTTP/2), whose client holds a connection slot
// (MAX_CONNECTIONS) instead. Without a guard it does nothing.
func guardStream(r *http.Request) (end func()) {
	e, _ := r.Context().Value(guardKey{}).(*guarded)
	if e == nil {
		return func() {}
	}
	g := e.g
	g.mu.Lock()
	if !e.gone {
		e.streams++
		e.unlinkLocked()
	}
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		if !e.gone {
			if e.streams--; e.streams == 0 {
				e.linkLocked(e.peer.serving, g.now()) // the handler returns next
			}
		}
		g.mu.Unlock()
	}
}

// Open returns the number of connections in the guard, streams included.
func (g *ConnGuard) Open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}
