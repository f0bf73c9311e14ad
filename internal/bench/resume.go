package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sync/errgroup"

	"github.com/wsdest/wsdest/internal/wsframe"
)

// ResumeConfig configures a resume run (wsbench -resume): Clients clients
// connect (envelope shape, to get cursors), records flow at Rate for
// Duration, and after DropAfter the Resume of them drop at once, stay away
// Away, and reconnect at once with the last cursor each received
// (WebSocket ?from=, SSE Last-Event-ID) while records keep flowing.
type ResumeConfig struct {
	// URL is the WebSocket URL (ws://host:port/ws...) of the server; with
	// SSE, its host and path (/ws replaced by /sse) are used over HTTP.
	URL string
	// SSE makes every client a Server-Sent Events client.
	SSE bool
	// Clients is the number of clients, Resume of which drop and resume.
	Clients, Resume int
	// DropAfter is when, after producing starts, the resumers drop;
	// default Duration/3. Away is how long they stay away; default 1 s.
	DropAfter, Away time.Duration
	// Snapshot makes the resumers come back with snapshot=true (the
	// latest record of every key, then live from the snapshot point)
	// instead of their cursor: what they missed while away is then not
	// theirs to get, and not counted lost.
	Snapshot bool
	// Brokers, Topic, Rate, Duration, Size, Keys: the producer, as in
	// Config.
	Brokers  []string
	Topic    string
	Rate     float64
	Duration time.Duration
	Size     int
	Keys     int
	// Drain is the longest wait after producing for the last deliveries;
	// default 5 s.
	Drain time.Duration
	// PID is the server's process id for its CPU and memory; 0 skips.
	PID int
	// InFlight bounds concurrent connects; default 200.
	InFlight int
	// AllowRemote permits non-loopback hosts.
	AllowRemote bool
}

// ResumeResult is the outcome of a resume run, printed as one JSON line.
type ResumeResult struct {
	Transport       string `json:"transport"`
	Clients         int    `json:"clients"`
	Resumers        int    `json:"resumers"`
	Connected       int    `json:"connected"`
	Reconnected     int    `json:"reconnected"`
	ConnectErrors   int    `json:"connect_errors"`
	RecordsProduced int64  `json:"records_produced"`
	// Lost is the deliveries that never arrived (every client must see
	// every record produced); Duplicates those that arrived twice.
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	Deliveries int64 `json:"deliveries"`
	// BehindRecords is how many records each resumer missed while away
	// (produced between its last record and its reconnection), on average.
	BehindRecords float64 `json:"behind_records"`
	// CatchUpMs: from reconnecting to receiving the record that was the
	// newest when it reconnected, over the resumers.
	CatchUpMs Latency `json:"catch_up_ms"`
	// StayLatencyMs is the latency of the clients that never dropped, for
	// records produced before the drop (Base) and in the two seconds after
	// the reconnection (Storm).
	StayLatencyBaseMs  Latency `json:"stay_latency_base_ms"`
	StayLatencyStormMs Latency `json:"stay_latency_storm_ms"`
	// With Snapshot: the keys of each resumer's snapshot on average, and
	// the time from reconnecting to its snapshot_end notice.
	SnapshotKeys float64 `json:"snapshot_keys,omitempty"`
	SnapshotMs   Latency `json:"snapshot_ms"`
	// Server figures (with PID): CPU over the run and per delivery, peak
	// RSS.
	ServerCPUSeconds        float64 `json:"server_cpu_seconds"`
	ServerCPUUsPerDelivery  float64 `json:"server_cpu_us_per_delivery"`
	ServerRSSPeakBytes      int64   `json:"server_rss_peak_bytes"`
	ServerRSSBeforeBytes    int64   `json:"server_rss_before_bytes"`
	ServerRSSConnectedBytes int64   `json:"server_rss_connected_bytes"`
}

// rclient is one client of a resume run. Its reader goroutine owns every
// field between connections; the run reads them only after the reader
// ended (done closed).
type rclient struct {
	resumer bool
	seen    []uint64 // bitmap of seqs received
	dups    int64
	n       int64
	cursor  []byte // the last cursor received
	lastSeq int64
	// Latency (stayers): records sent before dropAt, and in [stormFrom,
	// stormTo).
	base, storm                Histogram
	dropAt, stormFrom, stormTo int64
	// Catch-up (resumers): reconnected at, the seq that means live, and
	// when it arrived.
	reconnAt, target, liveAt int64
	// Snapshot (resumers with ResumeConfig.Snapshot): snapshotting until
	// the snapshot_end notice, which came at snapEnd after snapKeys
	// records; the records between the drop (afterDrop) and the first
	// live one (snapFrom) are not the client's.
	snapshotting        bool
	snapKeys            int64
	snapEnd             int64
	afterDrop, snapFrom int64

	conn net.Conn
	done chan struct{}

	mu sync.Mutex // guards the counters, read by receivedAll while the reader runs
}

// RunResume runs a resume benchmark.
func RunResume(ctx context.Context, cfg ResumeConfig, log *slog.Logger) (ResumeResult, error) {
	if cfg.Clients <= 0 || cfg.Resume < 0 || cfg.Resume > cfg.Clients || cfg.Rate <= 0 || cfg.Duration <= 0 {
		return ResumeResult{}, errors.New("bench: resume needs -clients > 0, 0 <= -resume <= -clients, -rate and -duration")
	}
	if cfg.DropAfter <= 0 {
		cfg.DropAfter = cfg.Duration / 3
	}
	if cfg.Away <= 0 {
		cfg.Away = time.Second
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 5 * time.Second
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 200
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return ResumeResult{}, fmt.Errorf("bench: -url: %w", err)
	}
	if !cfg.AllowRemote {
		if err := checkLoopback(ctx, u.Hostname()); err != nil {
			return ResumeResult{}, err
		}
		for _, b := range cfg.Brokers {
			host, _, _ := net.SplitHostPort(b)
			if err := checkLoopback(ctx, host); err != nil {
				return ResumeResult{}, err
			}
		}
	}
	if err := checkOpenFiles(cfg.Clients, 1); err != nil {
		return ResumeResult{}, err
	}
	res := ResumeResult{Transport: "websocket", Clients: cfg.Clients, Resumers: cfg.Resume}
	if cfg.SSE {
		res.Transport = "sse"
	}
	total := int64(cfg.Rate * cfg.Duration.Seconds())
	clients := make([]*rclient, cfg.Clients)
	for i := range clients {
		clients[i] = &rclient{resumer: i < cfg.Resume, seen: make([]uint64, total/64+1), lastSeq: -1}
	}
	ps := procStats{pid: cfg.PID}
	if cfg.PID > 0 {
		res.ServerRSSBeforeBytes, _ = ps.rss()
	}
	var mu sync.Mutex
	connect := func(cs []*rclient, resume bool) (ok, failed int) {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(cfg.InFlight)
		for _, c := range cs {
			g.Go(func() error {
				err := c.dial(gctx, u, cfg.SSE, resume, resume && cfg.Snapshot)
				mu.Lock()
				if err != nil {
					failed++
					if failed == 1 {
						log.Warn("connect failed", "err", err)
					}
				} else {
					ok++
				}
				mu.Unlock()
				return nil
			})
		}
		_ = g.Wait()
		return ok, failed
	}
	res.Connected, res.ConnectErrors = connect(clients, false)
	log.Info("connected", "clients", res.Connected, "errors", res.ConnectErrors)
	if cfg.PID > 0 {
		res.ServerRSSConnectedBytes, _ = ps.rss()
	}
	prod, err := newProducer(cfg.Brokers, cfg.Topic, cfg.Rate, cfg.Duration, cfg.Size, max(cfg.Keys, 1))
	if err != nil {
		return res, err
	}
	defer prod.close()
	var cpu0 time.Duration
	var peak *peakSampler
	if cfg.PID > 0 {
		cpu0, _ = ps.cpu()
		peak = startPeakSampler(ctx, ps, 100*time.Millisecond, res.ServerRSSConnectedBytes)
	}
	start := time.Now()
	dropAt := start.Add(cfg.DropAfter)
	for _, c := range clients {
		c.setWindows(dropAt.UnixNano(), 0, 0)
	}
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	prodDone := make(chan struct{})
	go func() { defer close(prodDone); prod.run(pctx) }()

	// The storm: every resumer drops at once, and comes back at once.
	if err := sleep(ctx, time.Until(dropAt)); err != nil {
		return res, err
	}
	resumers := clients[:cfg.Resume]
	for _, c := range resumers {
		c.hangUp()
	}
	if err := sleep(ctx, cfg.Away); err != nil {
		return res, err
	}
	target := prod.sent.Load() - 1
	reconnAt := time.Now()
	var behind int64
	for _, c := range resumers {
		behind += target - c.lastSeq
		c.reconnAt, c.target = reconnAt.UnixNano(), target
		c.afterDrop, c.snapFrom = c.lastSeq+1, -1
	}
	stormFrom, stormTo := reconnAt.UnixNano(), reconnAt.Add(2*time.Second).UnixNano()
	for _, c := range clients[cfg.Resume:] {
		c.setWindows(dropAt.UnixNano(), stormFrom, stormTo)
	}
	res.Reconnected, _ = connect(resumers, true)
	log.Info("reconnected", "clients", res.Reconnected, "took", time.Since(reconnAt).Round(time.Millisecond))
	if cfg.Resume > 0 {
		res.BehindRecords = round(float64(behind)/float64(cfg.Resume), 1)
	}

	select {
	case <-prodDone:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	fctx, fcancel := context.WithTimeout(ctx, cfg.Drain)
	_ = prod.flush(fctx)
	fcancel()
	res.RecordsProduced = prod.produced()
	deadline := time.Now().Add(cfg.Drain)
	for time.Now().Before(deadline) {
		if receivedAll(clients, res.RecordsProduced) {
			break
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return res, err
		}
	}
	if cfg.PID > 0 {
		cpu1, _ := ps.cpu()
		res.ServerCPUSeconds = round((cpu1 - cpu0).Seconds(), 3)
		res.ServerRSSPeakBytes = peak.Peak()
	}
	for _, c := range clients {
		c.hangUp()
	}
	var base, storm, catch, snaps Dist
	var snapKeys int64
	for _, c := range clients {
		for s := int64(0); s < res.RecordsProduced && s < total; s++ {
			if c.seen[s/64]&(1<<(s%64)) == 0 && !c.excused(s) {
				res.Lost++
			}
		}
		if c.snapEnd > 0 {
			snaps.add(c.snapEnd - c.reconnAt)
			snapKeys += c.snapKeys
		}
		res.Duplicates += c.dups
		res.Deliveries += c.n
		if c.resumer {
			if c.liveAt > 0 {
				catch.add(c.liveAt - c.reconnAt)
			}
			continue
		}
		c.base.AddTo(&base)
		c.storm.AddTo(&storm)
	}
	res.CatchUpMs = latencyOf(&catch)
	res.StayLatencyBaseMs = latencyOf(&base)
	res.StayLatencyStormMs = latencyOf(&storm)
	res.SnapshotMs = latencyOf(&snaps)
	if cfg.Snapshot && cfg.Resume > 0 {
		res.SnapshotKeys = round(float64(snapKeys)/float64(cfg.Resume), 1)
	}
	if res.Deliveries > 0 && res.ServerCPUSeconds > 0 {
		res.ServerCPUUsPerDelivery = round(res.ServerCPUSeconds*1e6/float64(res.Deliveries), 3)
	}
	return res, nil
}

func latencyOf(d *Dist) Latency {
	ms := func(ns int64) float64 { return round(float64(ns)/1e6, 2) }
	return Latency{P50: ms(d.Quantile(0.5)), P90: ms(d.Quantile(0.9)), P99: ms(d.Quantile(0.99)), Max: ms(d.Max())}
}

// add records one value in nanoseconds.
func (d *Dist) add(ns int64) {
	var h Histogram
	h.Record(ns)
	h.AddTo(d)
}

// receivedAll reports whether every connected client has seen every
// produced record.
func receivedAll(cs []*rclient, produced int64) bool {
	for _, c := range cs {
		if c.conn == nil {
			continue
		}
		if c.count() < produced {
			return false
		}
	}
	return true
}

func (c *rclient) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n - c.dups
	if c.snapFrom > c.afterDrop {
		n += c.snapFrom - c.afterDrop
	}
	return n
}

// excused reports whether seq is one a resumer that came back with a
// snapshot was not to get: produced after it dropped and before the
// first live record after its snapshot.
func (c *rclient) excused(seq int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapFrom >= 0 && c.snapEnd > 0 && seq >= c.afterDrop && seq < c.snapFrom
}

// setWindows sets when the drop happens and the storm window, for the
// latency split of the clients that stay.
func (c *rclient) setWindows(dropAt, stormFrom, stormTo int64) {
	c.mu.Lock()
	c.dropAt, c.stormFrom, c.stormTo = dropAt, stormFrom, stormTo
	c.mu.Unlock()
}

// hangUp closes the connection and waits for the reader to end.
func (c *rclient) hangUp() {
	if c.conn == nil {
		return
	}
	_ = c.conn.Close()
	<-c.done
}

// dial connects c (from its last cursor when resume is set) and starts its
// reader.
func (c *rclient) dial(ctx context.Context, u *url.URL, sse, resume, snapshot bool) error {
	q := u.Query()
	q.Set("envelope", "true")
	switch {
	case snapshot:
		q.Set("snapshot", "true")
		c.mu.Lock()
		c.snapshotting = true
		c.mu.Unlock()
		resume = false // no cursor: a snapshot
	case resume && !sse && len(c.cursor) > 0:
		q.Set("from", string(c.cursor))
	}
	uu := *u
	uu.RawQuery = q.Encode()
	var conn net.Conn
	var br *bufio.Reader
	if sse {
		var err error
		if conn, br, err = dialSSE(ctx, &uu, resumeID(c, resume)); err != nil {
			return err
		}
	} else {
		d := ws.Dialer{Timeout: 10 * time.Second}
		cn, rd, _, err := d.Dial(ctx, uu.String())
		if err != nil {
			return fmt.Errorf("bench: dial %s: %w", uu.Redacted(), err)
		}
		conn = cn
		br = rd
		if br == nil {
			br = bufio.NewReaderSize(conn, 0)
		}
	}
	c.conn = conn
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		if sse {
			c.readSSE(br)
		} else {
			c.readWS(br)
		}
	}()
	return nil
}

func resumeID(c *rclient, resume bool) string {
	if resume {
		return string(c.cursor)
	}
	return ""
}

// dialSSE sends the event stream request (with Last-Event-ID when id is
// set) and reads the response head.
func dialSSE(ctx context.Context, u *url.URL, id string) (net.Conn, *bufio.Reader, error) {
	path := strings.Replace(u.EscapedPath(), "/ws", "/sse", 1)
	if !strings.HasPrefix(path, "/sse") {
		path = "/sse" + path
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: dial %s: %w", u.Host, err)
	}
	req := "GET " + path + "?" + u.RawQuery + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\n"
	if id != "" {
		req += "Last-Event-ID: " + id + "\r\n"
	}
	req += "\r\n"
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("bench: SSE request: %w", err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		conn.Close()
		return nil, nil, fmt.Errorf("bench: SSE answer %q: %v", strings.TrimSpace(status), err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("bench: SSE head: %w", err)
		}
		if line == "\r\n" {
			break
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, nil
}

var cursorKey = []byte(`"cursor":"`)

var snapshotEnd = []byte(`{"notice":"snapshot_end"`)

// deliver records one delivered envelope message.
func (c *rclient) deliver(p []byte, now int64) {
	ts, seq, ok := scanTsSeq(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snapshotting {
		if bytes.HasPrefix(p, snapshotEnd) {
			c.snapshotting, c.snapEnd = false, now
		} else if ok {
			c.snapKeys++
		}
		return
	}
	if !ok {
		return // a notice
	}
	if c.snapEnd > 0 && c.snapFrom < 0 {
		c.snapFrom = seq
	}
	c.n++
	if seq >= 0 && seq/64 < int64(len(c.seen)) {
		w, b := seq/64, uint64(1)<<(seq%64)
		if c.seen[w]&b != 0 {
			c.dups++
		}
		c.seen[w] |= b
	}
	c.lastSeq = max(c.lastSeq, seq)
	if c.resumer {
		if c.liveAt == 0 && c.target > 0 && seq >= c.target {
			c.liveAt = now
		}
	} else {
		switch {
		case ts < c.dropAt:
			c.base.Record(now - ts)
		case ts >= c.stormFrom && ts < c.stormTo && c.stormFrom > 0:
			c.storm.Record(now - ts)
		}
	}
}

// readWS reads WebSocket frames until the connection ends, answering
// pings.
func (c *rclient) readWS(br *bufio.Reader) {
	buf := make([]byte, 0, 64<<10)
	tmp := make([]byte, 32<<10)
	for {
		n, err := br.Read(tmp)
		if n > 0 {
			buf = append(buf, tmp[:n]...)
			now := time.Now().UnixNano()
			for {
				f, size, perr := ParseFrame(buf)
				if perr != nil {
					return
				}
				if size > len(buf) {
					break
				}
				switch f.Op {
				case wsframe.OpText:
					c.takeCursor(f.Payload)
					c.deliver(f.Payload, now)
				case wsframe.OpPing:
					_, _ = c.conn.Write(AppendClientFrame(nil, wsframe.OpPong, f.Payload, [4]byte{1, 2, 3, 4}))
				case wsframe.OpClose:
					return
				}
				buf = buf[:copy(buf, buf[size:])]
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *rclient) takeCursor(p []byte) {
	i := bytes.LastIndex(p, cursorKey)
	if i < 0 {
		return
	}
	rest := p[i+len(cursorKey):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		c.cursor = append(c.cursor[:0], rest[:j]...)
	}
}

// readSSE reads events until the stream ends: the id line is the cursor,
// the data line the envelope.
func (c *rclient) readSSE(br *bufio.Reader) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		switch {
		case bytes.HasPrefix(line, []byte("id: ")):
			c.cursor = append(c.cursor[:0], bytes.TrimRight(line[4:], "\r\n")...)
		case bytes.HasPrefix(line, []byte("data: ")):
			c.deliver(line[6:], time.Now().UnixNano())
		}
	}
}
