package service_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/hub"
)

// These tests hold max_rate and SLOW_CLIENTS=conflate to their promises
// with a real broker over TCP and real WebSocket and SSE clients: each
// key at most N times a second, every key ending at its latest value, in
// publish order, so that a cursor received resumes with nothing lost but
// superseded records; a conflated client kept, told, and brought up to
// date while the others get everything.

// rateKeys are the keys of the rated streams: record i has key
// rateKeys[i%len(rateKeys)], on a topic of one partition, so offset i.
var rateKeys = []string{"a", "b", "c", "d"}

// produceKeyed produces records from to to-1, record i with key
// rateKeys[i%4] and the value {"i":i} padded with pad bytes.
func produceKeyed(p *e2etest.Producer, from, to, pad int) {
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		v := fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat("x", pad))
		recs = append(recs, e2etest.Record([]byte(rateKeys[i%len(rateKeys)]), []byte(v)))
	}
	p.ProduceRecords(recs...)
}

// latestChecker follows a latest-wins stream of the records 0 to total-1
// produced by produceKeyed: in publish (offset) order, and at every
// record received, every key whose last record is at or before it has
// received that last record (the cursor rule: resuming from any cursor
// received loses nothing but superseded records).
type latestChecker struct {
	total int
	next  int64          // offsets below are past
	final map[string]int // each key's last offset
	got   map[string]int // each key's last offset received
}

func newLatestChecker(total int) *latestChecker {
	return newLatestCheckerOf(total, func(int) bool { return true })
}

// newLatestCheckerOf is newLatestChecker for a stream of only the records
// i for which keep(i) holds (a view's).
func newLatestCheckerOf(total int, keep func(i int) bool) *latestChecker {
	c := &latestChecker{total: total, final: map[string]int{}, got: map[string]int{}}
	for i := range total {
		if keep(i) {
			c.final[rateKeys[i%len(rateKeys)]] = i
		}
	}
	return c
}

func (c *latestChecker) add(t *testing.T, m envMsg) {
	t.Helper()
	if m.Offset < c.next || m.Key != rateKeys[int(m.Offset)%len(rateKeys)] || m.value(t) != int(m.Offset) {
		t.Fatalf("record %s out of publish order (next offset %d) or not as produced", m.raw, c.next)
	}
	c.next = m.Offset + 1
	c.got[m.Key] = int(m.Offset)
	for k, f := range c.final {
		if int64(f) <= m.Offset && c.got[k] != f {
			t.Fatalf("at offset %d: key %s's last record (offset %d) was skipped: a resume from here loses it", m.Offset, k, f)
		}
	}
}

// done reports whether every key's last record has been received.
func (c *latestChecker) done() bool {
	for k, f := range c.final {
		if got, ok := c.got[k]; !ok || got != f {
			return false
		}
	}
	return true
}

// arrivals are the messages a client received, with the time each
// arrived.
type arrivals struct {
	raw [][]byte
	at  []time.Time
	err error
}

// collectLatest reads with read until every key of the records 0 to
// total-1 produced by produceKeyed has arrived at its last value.
func collectLatest(read func() ([]byte, error), total int) arrivals {
	return collectLatestOf(read, total, func(int) bool { return true })
}

// collectLatestOf is collectLatest for a stream of only the records i for
// which keep(i) holds (a view's).
func collectLatestOf(read func() ([]byte, error), total int, keep func(i int) bool) arrivals {
	var a arrivals
	want := total - len(rateKeys) // records from here on are the keys' last
	finals := 0
	for i := want; i < total; i++ {
		if keep(i) {
			finals++
		}
	}
	last := map[int64]bool{}
	for len(last) < finals {
		raw, err := read()
		if err != nil {
			a.err = err
			return a
		}
		a.raw = append(a.raw, raw)
		a.at = append(a.at, time.Now())
		var m envMsg
		if err := json.Unmarshal(raw, &m); err != nil {
			a.err = err
			return a
		}
		if m.Offset >= int64(want) {
			last[m.Offset] = true
		}
	}
	return a
}

// rateArrivals checks the arrival times of one key's records at a client
// with max_rate=1: the server sends them at least a second apart; on a
// loaded machine a record may be read late and the next on time, so the
// test allows a quarter of that, still far above what an unrated stream
// shows (a record of each key every 40 ms), and counts them over the
// whole span.
func rateArrivals(t *testing.T, key string, at []time.Time) {
	t.Helper()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 250*time.Millisecond {
			t.Fatalf("key %s: two records %v apart with max_rate=1", key, gap)
		}
	}
	if span := at[len(at)-1].Sub(at[0]); len(at) > int(span/time.Second)+2 {
		t.Fatalf("key %s: %d records in %v with max_rate=1", key, len(at), span)
	}
}

// TestMaxRate: with max_rate=1, WebSocket and SSE clients of a topic
// whose four keys change every 40 ms get each key about once a second, in
// publish order, and end at every key's last value; a client resuming from
// a cursor received gets everything after it (the catch-up is not rated)
// and so loses nothing.
func TestMaxRate(t *testing.T) {
	b := e2etest.StartBroker(t, "rate", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{config.EnvPingInterval: "1h"}))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	wsc := e2etest.Connect(t, svc.URL("/ws?envelope=true&max_rate=1"))
	sse := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?envelope=true&max_rate=1"), nil)

	const total = 400 // 4 s at a record every 10 ms
	go func() {
		for i := 0; i < total; i += 2 {
			produceKeyed(p, i, i+2, 0)
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// Both streams are read at once, each on a goroutine of its own that
	// only records what arrives when; the checks run here.
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	reads := []func() ([]byte, error){
		func() ([]byte, error) { return wsc.NextText(ctx) },
		func() ([]byte, error) {
			ev, err := sse.NextEvent(ctx)
			if err == nil && !strings.Contains(ev.Data, `"cursor":"`+ev.ID+`"`) {
				err = fmt.Errorf("sse: id %q is not the event's cursor: %s", ev.ID, ev.Data)
			}
			return []byte(ev.Data), err
		},
	}
	results := make(chan arrivals, len(reads))
	for _, read := range reads {
		go func() { results <- collectLatest(read, total) }()
	}
	var cursors []string
	var offsets []int64 // of the cursors
	for range reads {
		r := <-results
		if r.err != nil {
			t.Fatalf("after %d records: %v", len(r.raw), r.err)
		}
		check := newLatestChecker(total)
		byKey := map[string][]time.Time{}
		for i, raw := range r.raw {
			m := decodeEnv(t, raw)
			check.add(t, m)
			byKey[m.Key] = append(byKey[m.Key], r.at[i])
			if len(cursors) < 3 {
				cursors = append(cursors, m.Cursor)
				offsets = append(offsets, m.Offset)
			}
		}
		for k, at := range byKey {
			rateArrivals(t, k, at)
		}
		t.Logf("%d records of %d", len(r.raw), total)
	}
	if st := svc.Stats(t); st.Hub.Superseded == 0 {
		t.Fatalf("superseded %d, want records superseded", st.Hub.Superseded)
	}

	// Resume from the second cursor received: the catch-up brings every
	// record after it.
	resumed := e2etest.Connect(t, svc.URL("/ws?envelope=true&max_rate=1&from="+cursors[1]))
	for next := offsets[1] + 1; next < total; next++ {
		if m := decodeEnv(t, resumed.Next(t)); m.Offset != next {
			t.Fatalf("resumed: offset %d where %d was due", m.Offset, next)
		}
	}
	resumed.ExpectQuiet(t)
	// And SSE from Last-Event-ID.
	sseResumed := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?envelope=true&max_rate=1"), http.Header{"Last-Event-ID": {cursors[1]}})
	for next := offsets[1] + 1; next < total; next++ {
		if m := decodeEnv(t, []byte(sseResumed.Next(t).Data)); m.Offset != next {
			t.Fatalf("sse resumed: offset %d where %d was due", m.Offset, next)
		}
	}
}

// TestMaxRateWithView: clients with the same where= and max_rate=1 share
// one rate, and a client with the same where= and no rate shares the
// view with them: the rated clients get only the view's records, each key
// about once a second, in publish order, ending at each of its keys' last
// record; the unrated client gets every record of the view.
func TestMaxRateWithView(t *testing.T) {
	b := e2etest.StartBroker(t, "rate", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{config.EnvPingInterval: "1h"}))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	where := "&where=" + url.QueryEscape(`key in ["a", "c"] && value.i >= 0`) // the even records
	even := func(i int) bool { return i%2 == 0 }
	rated := []*e2etest.Client{
		e2etest.Connect(t, svc.URL("/ws?envelope=true&max_rate=1"+where)),
		e2etest.Connect(t, svc.URL("/ws?max_rate=1&envelope=true"+where)),
	}
	all := e2etest.Connect(t, svc.URL("/ws?envelope=true"+where))

	const total = 400
	go func() {
		for i := 0; i < total; i += 2 {
			produceKeyed(p, i, i+2, 0)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	results := make(chan arrivals, len(rated))
	for _, c := range rated {
		go func() { results <- collectLatestOf(func() ([]byte, error) { return c.NextText(ctx) }, total, even) }()
	}
	for i, m := range readEnv(t, all, total/2) {
		if m.Offset != int64(2*i) {
			t.Fatalf("unrated client of the view: %s where offset %d was due", m.raw, 2*i)
		}
	}
	for range rated {
		r := <-results
		if r.err != nil {
			t.Fatalf("after %d records: %v", len(r.raw), r.err)
		}
		check := newLatestCheckerOf(total, even)
		byKey := map[string][]time.Time{}
		for i, raw := range r.raw {
			m := decodeEnv(t, raw)
			if !even(int(m.Offset)) {
				t.Fatalf("rated client of the view got %s", raw)
			}
			check.add(t, m)
			byKey[m.Key] = append(byKey[m.Key], r.at[i])
		}
		if len(byKey) != 2 {
			t.Fatalf("keys %v, want a and c", byKey)
		}
		for k, at := range byKey {
			rateArrivals(t, k, at)
		}
	}
	if st := svc.Stats(t); st.Hub.Superseded == 0 {
		t.Fatalf("superseded %d, want records superseded", st.Hub.Superseded)
	}
}

// TestMaxRateOutOfRange: max_rate outside 0.1 to 1000 is refused with 400
// and one line naming the bounds, for WebSocket and SSE.
func TestMaxRateOutOfRange(t *testing.T) {
	b := e2etest.StartBroker(t, "rate", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	for _, q := range []string{"0", "0.01", "1001", "fast", "NaN"} {
		status, body := svc.Get(t, "/sse?max_rate="+q)
		want := fmt.Sprintf("400 Bad Request: max_rate=%q is not a number from 0.1 to 1000 (messages per key per second)\n", q)
		if status != http.StatusBadRequest || body != want {
			t.Errorf("sse max_rate=%s: %d %q, want 400 %q", q, status, body, want)
		}
		ctx, cancel := e2etest.Context(t)
		_, err := e2etest.Dial(ctx, svc.URL("/ws?max_rate="+q))
		cancel()
		if de, ok := err.(*e2etest.DialError); !ok || de.Status != http.StatusBadRequest {
			t.Errorf("websocket max_rate=%s: %v, want 400", q, err)
		}
	}
	// The service goes on serving.
	e2etest.Connect(t, svc.URL("/ws?max_rate=1000"))
}

// TestConflateSlowReader: with SLOW_CLIENTS=conflate, a client that stops
// reading (a small receive buffer) while 1.5 MB of records flows is kept:
// when it reads again it gets what was in flight, the conflated notice,
// each key's latest record in publish order, then caught_up, and every
// record again from then on; what it holds stays within MAX_QUEUE_BYTES;
// a client that keeps up gets every record meanwhile. Over WebSocket and
// over SSE.
func TestConflateSlowReader(t *testing.T) {
	for _, transport := range []string{"websocket", "sse"} {
		t.Run(transport, func(t *testing.T) { testConflateSlowReader(t, transport) })
	}
}

func testConflateSlowReader(t *testing.T, transport string) {
	b := e2etest.StartBroker(t, "conflate", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{
		config.EnvSlowClients: "conflate", config.EnvMaxQueueBytes: "512KiB", config.EnvSocketSendBuffer: "4KiB",
		config.EnvWriteTimeout: "2m", config.EnvPingInterval: "1h",
	}))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	var next func() []byte
	if transport == "sse" {
		slow := dialSlowSSE(t, svc.Addr(), "/sse?envelope=true")
		next = func() []byte { return slow.next(t) }
	} else {
		slow := e2etest.Connect(t, svc.URL("/ws?envelope=true"), e2etest.WithReadBuffer(4<<10))
		next = func() []byte { return slow.Next(t) }
	}
	fast := e2etest.Connect(t, svc.URL("/ws?envelope=true"))

	// About 1.5 MB, at about 1 MB/s: three times what the slow client may
	// hold, and a pace the fast client keeps up with.
	const total = 3000
	go func() {
		for i := 0; i < total; i += 20 {
			produceKeyed(p, i, i+20, 500)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for i, m := range readEnv(t, fast, total) {
		if m.Offset != int64(i) || m.Notice != "" {
			t.Fatalf("fast client: %s at %d", m.raw, i)
		}
	}
	st := svc.Stats(t).Hub
	if st.Conflating != 1 || st.Conflations != 1 || st.Superseded == 0 {
		t.Fatalf("hub stats %+v, want one client conflating", st)
	}

	check := newLatestChecker(total)
	conflated := false
	n := 0
	for {
		m := decodeEnv(t, next())
		if m.Notice == "conflated" && !conflated {
			conflated = true
			continue
		}
		if m.Notice == "caught_up" && conflated {
			break
		}
		check.add(t, m)
		n++
	}
	if !check.done() {
		t.Fatalf("caught up without every key's last record: %v, want %v", check.got, check.final)
	}
	t.Logf("the slow client got %d of %d records", n, total)
	produceKeyed(p, total, total+2, 0)
	for i := range 2 {
		if m := decodeEnv(t, next()); m.Offset != int64(total+i) {
			t.Fatalf("after catching up: %s", m.raw)
		}
	}
	st = svc.Stats(t).Hub
	if st.Conflating != 0 || st.Closes[hub.ReasonQueueFull] != 0 || st.Clients != 2 {
		t.Fatalf("hub stats %+v, want both clients connected, none conflating", st)
	}
}

// slowSSE is an SSE client over a raw TCP connection with a small receive
// buffer, read only when asked to, so that it falls behind.
type slowSSE struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialSlowSSE requests path and reads the response head: once it is in,
// the server has subscribed the client.
func dialSlowSSE(t *testing.T, addr, path string) *slowSSE {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	s := &slowSSE{conn: conn, r: bufio.NewReaderSize(conn, 4<<10)}
	_ = conn.SetReadDeadline(time.Now().Add(e2etest.Wait))
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("sse head: %v", err)
		}
		if strings.HasPrefix(line, "retry:") {
			return s
		}
		if strings.HasPrefix(line, "HTTP/1.1 ") && !strings.HasPrefix(line, "HTTP/1.1 200 ") {
			t.Fatalf("sse: %s", line)
		}
	}
}

// next returns the data of the next event.
func (s *slowSSE) next(t *testing.T) []byte {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(e2etest.Wait))
	var data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("sse: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && data != "":
			return []byte(data)
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		}
	}
}
