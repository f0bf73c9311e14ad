package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// KeyPlaceholder in a URL is replaced, per client, by the key that client
// subscribes to ("k-<client index mod keys>"), for servers that filter by
// key in the path or query.
const KeyPlaceholder = "{key}"

// GroupConfig describes the clients one process runs. It travels to worker
// processes as JSON.
type GroupConfig struct {
	URL string `json:"url"`
	// First is the global index of the group's first client; indexes decide
	// the key, the source address and whether a client stalls, so a run
	// split over processes behaves as one.
	First int `json:"first"`
	Count int `json:"count"`
	// Keys is the number of distinct record keys the producer cycles through.
	Keys int `json:"keys"`
	// Stall is the fraction of clients that connect but never read.
	Stall float64 `json:"stall"`
	// ConnectRate is this group's connections per second; 0 is unpaced.
	ConnectRate float64 `json:"connect_rate"`
	// InFlight bounds the handshakes in progress at once.
	InFlight int `json:"in_flight"`
	// SourceIPs, when above 0, spreads clients over the local addresses
	// 127.0.0.1 to 127.0.0.<SourceIPs>, each with its own ephemeral ports.
	SourceIPs   int           `json:"source_ips"`
	DialTimeout time.Duration `json:"dial_timeout"`
	// StallRead bounds the final read of the stalled clients.
	StallRead time.Duration `json:"stall_read"`
	// StallRcvBuf, when above 0, is the SO_RCVBUF of the stalled clients'
	// sockets: how much a client that stops reading can still take in its
	// kernel before the server's writes to it block.
	StallRcvBuf int `json:"stall_rcvbuf"`
	// TLSCAFile, for wss:// URLs, is the PEM file of the CA to trust.
	TLSCAFile string `json:"tls_ca_file,omitempty"`
	// Deflate offers permessage-deflate (no context takeover) and inflates
	// the compressed frames before measuring them.
	Deflate bool `json:"deflate"`
	// Filters and Projections, when above 0, give each client a view
	// (viewQuery): one of Filters distinct ?where= filters and one of
	// Projections distinct ?fields= lists.
	Filters     int `json:"filters,omitempty"`
	Projections int `json:"projections,omitempty"`
	// LatestWins is for a URL with max_rate: the clients also measure the
	// shortest time between two deliveries of one key, and report the
	// last record of each key they got (GroupResult.LastSeqMin).
	LatestWins bool `json:"latest_wins,omitempty"`
}

// GroupResult is what a group reports: the connect fields after Connect,
// everything after Stop.
type GroupResult struct {
	Connected         int     `json:"connected"`
	ConnectErrors     int     `json:"connect_errors"`
	FirstConnectError string  `json:"first_connect_error,omitempty"`
	ConnectSeconds    float64 `json:"connect_seconds"`
	// Reading counts the connected clients that read; ReadingByKey splits
	// them by key when the URL filters by key.
	Reading       int   `json:"reading"`
	ReadingByKey  []int `json:"reading_by_key,omitempty"`
	Stalled       int   `json:"stalled"`
	StalledClosed int   `json:"stalled_closed"`
	// Disconnected counts reading clients whose connection ended before
	// the run did.
	Disconnected int   `json:"disconnected"`
	Received     int64 `json:"received"`
	Duplicates   int64 `json:"duplicates"`
	OutOfOrder   int64 `json:"out_of_order"`
	Unparsed     int64 `json:"unparsed"`
	Misrouted    int64 `json:"misrouted"`
	Latency      Dist  `json:"latency"`
	// With LatestWins: MinKeyGapNs is the shortest time between two
	// deliveries of one key at one client (0: none), and LastSeqMin, per
	// key, the lowest over the reading clients of the last seq of that
	// key each received, plus one (0: some client got none).
	MinKeyGapNs int64    `json:"min_key_gap_ns,omitempty"`
	LastSeqMin  []uint32 `json:"last_seq_min,omitempty"`
}

// merge adds o into r.
func (r *GroupResult) merge(o *GroupResult) {
	r.Connected += o.Connected
	r.ConnectErrors += o.ConnectErrors
	if r.FirstConnectError == "" {
		r.FirstConnectError = o.FirstConnectError
	}
	r.ConnectSeconds = max(r.ConnectSeconds, o.ConnectSeconds)
	r.Reading += o.Reading
	if len(o.ReadingByKey) > len(r.ReadingByKey) {
		r.ReadingByKey = append(r.ReadingByKey, make([]int, len(o.ReadingByKey)-len(r.ReadingByKey))...)
	}
	for k, n := range o.ReadingByKey {
		r.ReadingByKey[k] += n
	}
	r.Stalled += o.Stalled
	r.StalledClosed += o.StalledClosed
	r.Disconnected += o.Disconnected
	r.Received += o.Received
	r.Duplicates += o.Duplicates
	r.OutOfOrder += o.OutOfOrder
	r.Unparsed += o.Unparsed
	r.Misrouted += o.Misrouted
	r.Latency.Merge(&o.Latency)
	r.mergeLatest(o.MinKeyGapNs, o.LastSeqMin)
}

// stalls reports whether client i is one of the stalled ones; the stalled
// clients are spread evenly over the indexes.
func stalls(i int, frac float64) bool {
	return frac > 0 && math.Floor(float64(i+1)*frac) > math.Floor(float64(i)*frac)
}

// Group runs a set of clients in this process. Connect, Received, Stop and
// Abort may be called from different goroutines, but Connect must return
// before the others are called, and only one of Stop and Abort, once.
type Group struct {
	cfg GroupConfig

	inflaters sync.Pool // *wsframe.Inflater shared by the clients (GroupConfig.Deflate)

	// clients[j] is client First+j, nil when it failed to connect. Written
	// by the connecting goroutines; read-only once Connect returns.
	clients []*client
	readers sync.WaitGroup
	res     GroupResult // connect fields, owned by Connect
	tls     *tls.Config // for wss:// URLs; read-only
}

// NewGroup returns a group that has not connected yet. Zero fields of cfg
// get defaults: Keys 1, InFlight 200, DialTimeout 10s, StallRead 2s.
func NewGroup(cfg GroupConfig) *Group {
	if cfg.Keys <= 0 {
		cfg.Keys = 1
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 200
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.StallRead <= 0 {
		cfg.StallRead = 2 * time.Second
	}
	return &Group{cfg: cfg, clients: make([]*client, cfg.Count), tls: tlsConfig(cfg.TLSCAFile)}
}

// Connect opens the group's connections, paced by ConnectRate with at most
// InFlight handshakes at once, and starts a reader goroutine for each
// reading client. It returns when every client has connected or failed, or
// ctx is done (clients not tried then count as errors).
func (g *Group) Connect(ctx context.Context) GroupResult {
	start := time.Now()
	var (
		sem      = make(chan struct{}, g.cfg.InFlight)
		wg       sync.WaitGroup
		errs     atomic.Int64
		errOnce  sync.Once
		firstErr string
	)
	tried := 0
	var timer *time.Timer
loop:
	for j := range g.cfg.Count {
		if g.cfg.ConnectRate > 0 {
			at := start.Add(time.Duration(float64(j) / g.cfg.ConnectRate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-ctx.Done():
					break loop
				case <-timer.C:
				}
			}
		}
		select {
		case <-ctx.Done():
			break loop
		case sem <- struct{}{}:
		}
		tried++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := g.dial(ctx, g.cfg.First+j)
			if err != nil {
				errs.Add(1)
				errOnce.Do(func() { firstErr = err.Error() })
				return
			}
			g.clients[j] = c
			if !c.stalled {
				g.readers.Go(c.readLoop)
			}
		}()
	}
	wg.Wait()
	if timer != nil {
		timer.Stop()
	}

	r := &g.res
	r.ConnectSeconds = time.Since(start).Seconds()
	r.ConnectErrors = int(errs.Load()) + g.cfg.Count - tried
	r.FirstConnectError = firstErr
	if ctx.Err() != nil && r.FirstConnectError == "" {
		r.FirstConnectError = ctx.Err().Error()
	}
	filtered := strings.Contains(g.cfg.URL, KeyPlaceholder)
	if filtered {
		r.ReadingByKey = make([]int, g.cfg.Keys)
	}
	for _, c := range g.clients {
		if c == nil {
			continue
		}
		r.Connected++
		switch {
		case c.stalled:
			r.Stalled++
		case filtered:
			r.Reading++
			r.ReadingByKey[c.key]++
		default:
			r.Reading++
		}
	}
	return *r
}

func (g *Group) dial(ctx context.Context, i int) (*client, error) {
	c := &client{
		stalled:   stalls(i, g.cfg.Stall),
		key:       -1,
		keys:      g.cfg.Keys,
		maskKey:   uint32(i)*2654435761 | 1,
		inflaters: &g.inflaters,
	}
	url := g.cfg.URL
	if strings.Contains(url, KeyPlaceholder) {
		c.key = i % g.cfg.Keys
		url = strings.ReplaceAll(url, KeyPlaceholder, "k-"+strconv.Itoa(c.key))
	}
	url = appendQuery(url, viewQuery(i, g.cfg.Filters, g.cfg.Projections))
	d := ws.Dialer{Timeout: g.cfg.DialTimeout, TLSConfig: g.tls}
	if g.cfg.Deflate {
		d.Extensions = []httphead.Option{wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}.Option()}
	}
	var nd net.Dialer
	if n := g.cfg.SourceIPs; n > 0 {
		nd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%n))}
	}
	if c.stalled && g.cfg.StallRcvBuf > 0 {
		// Before connect, so that the window the client announces is small.
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, g.cfg.StallRcvBuf)
			})
			return errors.Join(err, serr)
		}
	}
	if nd.LocalAddr != nil || nd.Control != nil {
		d.NetDial = nd.DialContext
	}
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	if br != nil {
		// Bytes the server sent right behind its handshake response.
		p, _ := br.Peek(br.Buffered())
		c.pending = append([]byte(nil), p...)
		ws.PutReader(br)
	}
	c.conn = conn
	if !c.stalled {
		c.stats = newClientStats(c.key, c.keys, g.cfg.LatestWins)
	}
	return c, nil
}

// Received returns the deliveries recorded so far.
func (g *Group) Received() int64 {
	var n int64
	for _, c := range g.clients {
		if c != nil && c.stats != nil {
			n += c.stats.received.Load()
		}
	}
	return n
}

// Abort closes every connection at once and waits for the readers, on an
// error path where no results are wanted. It may be called instead of Stop.
func (g *Group) Abort() {
	for _, c := range g.clients {
		if c != nil {
			c.conn.Close()
		}
	}
	g.readers.Wait()
}

// Stop ends the run: the stalled clients read what the server queued for
// them (bounded by StallRead) to learn whether it closed them, then every
// connection is closed and the results are merged.
func (g *Group) Stop() GroupResult {
	deadline := time.Now().Add(g.cfg.StallRead)
	var drains sync.WaitGroup
	for _, c := range g.clients {
		if c != nil && c.stalled {
			drains.Go(func() { c.drainStalled(deadline) })
		}
	}
	drains.Wait()

	// A reader that has already ended lost its connection during the run;
	// record that before our own Close ends the others.
	early := make([]bool, len(g.clients))
	for j, c := range g.clients {
		if c == nil {
			continue
		}
		if !c.stalled {
			early[j] = c.ended.Load()
		}
		c.conn.Close()
	}
	g.readers.Wait()

	r := g.res
	for j, c := range g.clients {
		switch {
		case c == nil:
		case c.stalled:
			if c.closedByServer {
				r.StalledClosed++
			}
		default:
			if early[j] {
				r.Disconnected++
			}
			st := c.stats
			r.Received += st.received.Load()
			r.Duplicates += st.duplicates
			r.OutOfOrder += st.outOfOrder
			r.Unparsed += st.unparsed
			r.Misrouted += st.misrouted
			st.hist.AddTo(&r.Latency)
			if st.lastAt != nil && c.key < 0 {
				r.mergeLatest(st.minGap, st.lastSeq)
			}
		}
	}
	return r
}
