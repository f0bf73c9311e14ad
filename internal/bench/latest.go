package bench

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsdest/wsdest/internal/wsframe"
)

// This file measures latest-wins delivery: clients with max_rate (their
// deliveries are not all the records, so loss means nothing; what counts
// is how often each key arrives and whether each key's last record does),
// and slow readers of a server with SLOW_CLIENTS=conflate (how old each
// key's last record is when it arrives, and whether the reader is kept).

// mergeLatest folds one client's (or group's) latest-wins figures into r.
func (r *GroupResult) mergeLatest(minGap int64, lastSeq []uint32) {
	if minGap > 0 && (r.MinKeyGapNs == 0 || minGap < r.MinKeyGapNs) {
		r.MinKeyGapNs = minGap
	}
	if lastSeq == nil {
		return
	}
	if r.LastSeqMin == nil {
		r.LastSeqMin = append([]uint32(nil), lastSeq...)
		return
	}
	for k, s := range lastSeq {
		if k < len(r.LastSeqMin) {
			r.LastSeqMin[k] = min(r.LastSeqMin[k], s)
		}
	}
}

// finalSeqs returns, per key, the seq of the last of sent records keyed
// round robin over keys, plus one (0: the key got none).
func finalSeqs(sent int64, keys int) []uint32 {
	out := make([]uint32, keys)
	for s := max(0, sent-int64(keys)); s < sent; s++ {
		out[s%int64(keys)] = uint32(s) + 1
	}
	return out
}

// missingKeys counts the keys whose last record (final) is not in got.
func missingKeys(got, final []uint32) int {
	n := 0
	for k, f := range final {
		if f != 0 && (k >= len(got) || got[k] != f) {
			n++
		}
	}
	return n
}

// withQuery returns u with the query parameter name=value added.
func withQuery(u, name, value string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	q := p.Query()
	q.Set(name, value)
	p.RawQuery = q.Encode()
	// The key placeholder survives the encoding unescaped.
	return stringsReplaceBraces(p.String()), nil
}

// stringsReplaceBraces undoes the escaping of KeyPlaceholder.
func stringsReplaceBraces(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("%7Bkey%7D"), []byte(KeyPlaceholder)))
}

// SlowResult is what the slow readers saw (Config.SlowReaders).
type SlowResult struct {
	Readers int `json:"readers"`
	// Kept counts the readers still connected at the end; Conflated and
	// CaughtUp those that got the conflated and caught_up notices.
	Kept      int `json:"kept"`
	Conflated int `json:"conflated"`
	CaughtUp  int `json:"caught_up"`
	// FinalMissingKeys counts, over the readers, the keys whose last
	// record never arrived.
	FinalMissingKeys int `json:"final_missing_keys"`
	// StalenessMs is, over every key of every reader, the time from the
	// production of the key's last record to its arrival.
	StalenessMs Latency `json:"staleness_ms"`
	Bytes       int64   `json:"bytes"`
}

// slowReader is a client that reads at most rate bytes a second.
type slowReader struct {
	conn net.Conn
	mu   sync.Mutex // guards the fields below conn's; held by run while it parses

	// Set up by dialSlow, then owned by run.
	rate  int
	keys  int
	buf   []byte
	ended bool

	conflated, caughtUp bool
	lastSeq             []uint32 // per key: last seq + 1
	lastTs              []int64  // per key: the ts of lastSeq's record
	lastAt              []int64  // per key: when it arrived
	bytes               int64
}

// dialSlow connects n slow readers to u (the envelope is asked for: it is
// what carries the notices) with a receive buffer of rcvbuf bytes.
func dialSlow(ctx context.Context, u string, n, rate, keys, rcvbuf int) ([]*slowReader, error) {
	u, err := withQuery(u, "envelope", "true")
	if err != nil {
		return nil, err
	}
	var out []*slowReader
	for range n {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}}
		d := ws.Dialer{Timeout: 10 * time.Second, NetDial: nd.DialContext}
		conn, br, _, err := d.Dial(ctx, stringsReplaceBraces(u))
		if err != nil {
			for _, r := range out {
				r.conn.Close()
			}
			return nil, err
		}
		r := &slowReader{conn: conn, rate: rate, keys: keys,
			lastSeq: make([]uint32, keys), lastTs: make([]int64, keys), lastAt: make([]int64, keys)}
		if br != nil {
			p, _ := br.Peek(br.Buffered())
			r.buf = append(r.buf, p...)
			ws.PutReader(br)
		}
		out = append(out, r)
	}
	return out, nil
}

// run reads at the reader's rate until ctx is done or the connection ends.
func (r *slowReader) run(ctx context.Context) {
	chunk := max(1, r.rate/20) // 20 reads a second
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	tmp := make([]byte, chunk)
	for ctx.Err() == nil {
		_ = r.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := r.conn.Read(tmp)
		r.mu.Lock()
		r.buf = append(r.buf, tmp[:n]...)
		r.bytes += int64(n)
		r.parse(time.Now().UnixNano())
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			r.ended = true
		}
		ended := r.ended
		r.mu.Unlock()
		if ended {
			return
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// parse consumes the whole frames in buf.
func (r *slowReader) parse(now int64) {
	for {
		f, size, err := ParseFrame(r.buf)
		if err != nil {
			r.ended = true
			return
		}
		if size > len(r.buf) {
			return
		}
		switch f.Op {
		case wsframe.OpText:
			r.deliver(f.Payload, now)
		case wsframe.OpClose:
			r.ended = true
		case wsframe.OpPing:
			// Answered as any client does, or the server drops it
			// (PING_INTERVAL) however slowly it reads.
			_, _ = r.conn.Write(AppendClientFrame(nil, wsframe.OpPong, f.Payload, [4]byte{1, 2, 3, 4}))
		}
		r.buf = r.buf[:copy(r.buf, r.buf[size:])]
	}
}

func (r *slowReader) deliver(p []byte, now int64) {
	switch {
	case bytes.Contains(p, []byte(`"notice":"conflated"`)):
		r.conflated = true
		return
	case bytes.Contains(p, []byte(`"notice":"caught_up"`)):
		r.caughtUp = true
		return
	}
	ts, seq, ok := scanTsSeq(p)
	if !ok || seq >= 1<<32-1 {
		return
	}
	k := int(seq % int64(r.keys))
	if uint32(seq)+1 > r.lastSeq[k] {
		r.lastSeq[k], r.lastTs[k], r.lastAt[k] = uint32(seq)+1, ts, now
	}
}

// runSlow runs the readers until stop is closed, then reads on for at most
// drain until each has every key's last record, and reports.
func runSlow(ctx context.Context, readers []*slowReader, stop <-chan struct{}, drain time.Duration, sent func() int64) SlowResult {
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Go(func() { r.run(rctx) })
	}
	select {
	case <-stop:
	case <-ctx.Done():
	}
	final := finalSeqs(sent(), len(readers[0].lastSeq))
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := true
		for _, r := range readers {
			r.mu.Lock()
			if !r.ended && missingKeys(r.lastSeq, final) > 0 {
				done = false
			}
			r.mu.Unlock()
		}
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	res := SlowResult{Readers: len(readers)}
	var stale []float64
	for _, r := range readers {
		if !r.ended {
			res.Kept++
		}
		if r.conflated {
			res.Conflated++
		}
		if r.caughtUp {
			res.CaughtUp++
		}
		res.Bytes += r.bytes
		res.FinalMissingKeys += missingKeys(r.lastSeq, final)
		for k, f := range final {
			if f != 0 && r.lastSeq[k] == f {
				stale = append(stale, float64(r.lastAt[k]-r.lastTs[k])/1e6)
			}
		}
		r.conn.Close()
	}
	sort.Float64s(stale)
	q := func(p float64) float64 {
		if len(stale) == 0 {
			return 0
		}
		return round(stale[min(len(stale)-1, int(p*float64(len(stale))))], 3)
	}
	res.StalenessMs = Latency{P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: q(1)}
	return res
}

// startSlow connects cfg's slow readers and runs them on a goroutine of
// their own; stop ends their run (they then read on until every key's
// last record arrived, within cfg.Drain) and done yields what they saw.
// Without slow readers, done is nil and stop does nothing.
func startSlow(ctx context.Context, cfg Config, prod *producer, logger interface {
	Info(string, ...any)
}) (done <-chan SlowResult, stop func(), err error) {
	if cfg.SlowReaders == 0 {
		return nil, func() {}, nil
	}
	rcvbuf := cfg.StallRcvBuf
	if rcvbuf <= 0 {
		rcvbuf = 4 << 10
	}
	readers, err := dialSlow(ctx, cfg.URL, cfg.SlowReaders, cfg.SlowReadBytes, cfg.Keys, rcvbuf)
	if err != nil {
		return nil, nil, err
	}
	logger.Info("slow readers connected", "readers", len(readers), "bytes_per_second", cfg.SlowReadBytes)
	ch := make(chan SlowResult, 1)
	stopped := make(chan struct{})
	go func() { ch <- runSlow(ctx, readers, stopped, cfg.Drain, prod.sent.Load) }()
	var once sync.Once
	return ch, func() { once.Do(func() { close(stopped) }) }, nil
}
