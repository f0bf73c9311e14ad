package service_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/e2etest"
)

// q builds a query string from name, value pairs, escaped.
func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

// viewRecords are produced, in order, to a topic of one partition by
// TestViewsWhere and TestViewsFields; the last matches every filter of
// the tests, so that a client that got it has got everything it will.
var viewRecords = []struct {
	key, value string
	headers    []string
}{
	{"sensor-1", `{"temperature":31,"Tags":{"location":"lab"},"unit":"C"}`, []string{"source", "plc-7"}},
	{"sensor-2", `{"temperature":20,"Tags":{"location":"yard"},"unit":"C"}`, nil},
	{"act-1", `{"temperature":35,"unit":"F"}`, []string{"source", "plc-8"}},
	{"txt", `hello, not json`, []string{"source", "plc-7"}},
	{"sensor-3", `[1,2]`, nil},
	{"sensor-end", `{"temperature":99,"Tags":{"location":"lab","floor":2},"x":1}`, []string{"source", "plc-7"}},
}

func produceViewRecords(p *e2etest.Producer) {
	var recs []*kgo.Record
	for _, r := range viewRecords {
		var hs []kgo.RecordHeader
		for i := 0; i+1 < len(r.headers); i += 2 {
			hs = append(hs, e2etest.Header(r.headers[i], r.headers[i+1]))
		}
		recs = append(recs, e2etest.Record([]byte(r.key), []byte(r.value), hs...))
	}
	p.ProduceRecords(recs...)
}

// TestViewsWhere: ?where= filters on nested fields, headers, the key and
// each Quix row, over WebSocket and SSE, plain and envelope; a value that
// is not JSON has no value to test, and reaches a filter on its key.
func TestViewsWhere(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, nil)
	tests := []struct {
		name, query string
		want        []string // the frames, in order
	}{
		{"nested number", q("where", "value.temperature > 30"), []string{viewRecords[0].value, viewRecords[2].value, viewRecords[5].value}},
		{"has and nested string", q("where", `has(value.Tags) && value.Tags.location == "lab"`), []string{viewRecords[0].value, viewRecords[5].value}},
		{"header", q("where", `headers["source"] == "plc-7"`), []string{viewRecords[0].value, viewRecords[5].value}},
		{"key", q("where", `key.startsWith("sensor-")`), []string{viewRecords[0].value, viewRecords[1].value, viewRecords[4].value, viewRecords[5].value}},
		{"not JSON: value absent", q("where", `!(value.temperature < 30)`), []string{viewRecords[0].value, viewRecords[2].value, viewRecords[5].value}},
		{"not JSON by key, envelope", q("where", `key == "txt" || key == "sensor-end"`, "envelope", "true"), []string{`"hello, not json"`, viewRecords[5].value}},
		{"header, envelope", q("where", `headers["source"] == "plc-7"`, "envelope", "true"), []string{viewRecords[0].value, `"hello, not json"`, viewRecords[5].value}},
	}
	clients := make([]*e2etest.Client, len(tests))
	for i, tt := range tests {
		clients[i] = e2etest.Connect(t, s.URL("/ws?"+tt.query))
	}
	sse := e2etest.ConnectSSE(t, s.HTTPURL("/sse?"+q("where", "value.temperature > 30")), nil)
	plain := e2etest.Connect(t, s.URL("/ws"))
	produceViewRecords(p)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clients[i]
			for j, want := range tt.want {
				got := c.Next(t)
				if strings.Contains(tt.query, "envelope") {
					e := decodeEnvelope(t, got)
					got = e.Value
					if e.Topic != "t" {
						t.Fatalf("envelope without its members: %s", got)
					}
				}
				if string(got) != want {
					t.Fatalf("frame %d: %s, want %s", j, got, want)
				}
			}
			c.ExpectQuiet(t)
		})
	}
	for _, i := range []int{0, 2, 5} {
		if ev := sse.Next(t); ev.Data != viewRecords[i].value || ev.ID == "" {
			t.Fatalf("SSE event %+v, want record %d with its cursor", ev, i)
		}
	}
	if n := len(plain.NextN(t, 5)); n != 5 { // every JSON value
		t.Fatalf("a client without a view got %d records", n)
	}
	plain.ExpectQuiet(t)
}

// TestViewsQuixRows: a filter tests each row of a Quix record, and a
// projection projects each.
func TestViewsQuixRows(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, nil)
	const ts = `{"Timestamps":[1,2,3],"NumericValues":{"speed":[1,2.5,7],"rpm":[10,20,30]},"TagValues":{"car":["A","B","A"]}}`
	c := e2etest.Connect(t, s.URL("/ws?"+q("where", `value.Tags.car == "A"`, "fields", "speed,Tags.car")))
	p.ProduceRecords(e2etest.Record([]byte("car"), []byte(ts),
		e2etest.Header("__Q_ModelKey", "TimeseriesData"), e2etest.Header("__Q_CodecId", "JT")))
	for _, want := range []string{`{"speed":1,"Tags":{"car":"A"}}`, `{"speed":7,"Tags":{"car":"A"}}`} {
		if got := c.Next(t); string(got) != want {
			t.Fatalf("row %s, want %s", got, want)
		}
	}
	c.ExpectQuiet(t)
}

// TestViewsFields: ?fields= keeps the members asked for, nested paths
// included, in the record's order; missing ones are left out, values that
// are not objects delivered as they are, and the envelope's members stay.
func TestViewsFields(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, nil)
	plain := e2etest.Connect(t, s.URL("/ws?"+q("fields", "Tags.location,temperature,nope")))
	env := e2etest.Connect(t, s.URL("/ws?"+q("fields", "Tags.floor,x", "envelope", "true")))
	sse := e2etest.ConnectSSE(t, s.HTTPURL("/sse?"+q("fields", "x", "envelope", "true", "where", `key == "sensor-end"`)), nil)
	produceViewRecords(p)
	for _, want := range []string{
		`{"temperature":31,"Tags":{"location":"lab"}}`,
		`{"temperature":20,"Tags":{"location":"yard"}}`,
		`{"temperature":35}`,
		`[1,2]`,
		`{"temperature":99,"Tags":{"location":"lab"}}`,
	} {
		if got := plain.Next(t); string(got) != want {
			t.Fatalf("plain %s, want %s", got, want)
		}
	}
	plain.ExpectQuiet(t)
	for i, want := range []string{`{}`, `{}`, `{}`, `"hello, not json"`, `[1,2]`, `{"Tags":{"floor":2},"x":1}`} {
		got := env.Next(t)
		e := decodeEnvelope(t, got)
		m := decodeEnv(t, got)
		if string(e.Value) != want || e.Topic != "t" || string(e.Key) != `"`+viewRecords[i].key+`"` || m.Cursor == "" || e.Offset != int64(i) {
			t.Fatalf("envelope %s, want the record's with value %s", got, want)
		}
		if viewRecords[i].headers != nil && e.Headers["source"] != viewRecords[i].headers[1] {
			t.Fatalf("envelope %s lost its headers", got)
		}
	}
	env.ExpectQuiet(t)
	ev := sse.Next(t)
	e := sseEnv(t, ev)
	if string(e.Value) != `{"x":1}` || e.Key != "sensor-end" {
		t.Fatalf("SSE event %+v", ev)
	}
}

// TestViewsResume: a client with a view that resumes from a cursor gets
// the records after it that its view selects, exactly, from the history
// and from Kafka (a second process, which has no history of them), and
// again from a cursor of the catch-up.
func TestViewsResume(t *testing.T) {
	b := e2etest.StartBroker(t, "views-resume", 3)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	view := q("where", "int(value.i) % 3 == 0", "fields", "i", "envelope", "true")
	hot := func(from, to int) []int {
		var out []int
		for i := from; i < to; i++ {
			if i%3 == 0 {
				out = append(out, i)
			}
		}
		return out
	}
	a := e2etest.Connect(t, svc.URL("/ws?"+view))
	produceN(p, 0, 30, time.Time{})
	live := readEnv(t, a, 10)
	checkStream(t, live, hot(0, 30))
	_ = a.Close()
	first := live[:4]
	for _, m := range first {
		if m.raw != fmt.Sprintf(`{"topic":"views-resume","partition":%d,"offset":%d,`, m.Partition, m.Offset)+m.raw[strings.Index(m.raw, `"timestamp"`):] ||
			string(m.Value) != fmt.Sprintf(`{"i":%d}`, m.value(t)) {
			t.Fatalf("envelope %s", m.raw)
		}
	}
	cursor := first[3].Cursor
	produceN(p, 30, 51, time.Time{})

	second := e2etest.StartService(t, e2etest.BrokerEnv(b))
	second.WaitReady(t)
	for name, s := range map[string]*e2etest.Service{"history": svc, "kafka": second} {
		t.Run(name, func(t *testing.T) {
			c := e2etest.Connect(t, s.URL("/ws?"+view+"&from="+cursor))
			want := hot(0, 51)
			rest := readEnv(t, c, len(want)-4)
			checkStream(t, append(append([]envMsg(nil), first...), rest...), want)
			c.ExpectQuiet(t)
			for _, m := range rest {
				if string(m.Value) != fmt.Sprintf(`{"i":%d}`, m.value(t)) {
					t.Fatalf("caught-up value %s not projected", m.Value)
				}
			}
			c2 := e2etest.Connect(t, s.URL("/ws?"+view+"&from="+rest[2].Cursor))
			checkStream(t, append(append(append([]envMsg(nil), first...), rest[:3]...), readEnv(t, c2, len(rest)-3)...), want)
			c2.ExpectQuiet(t)
			// SSE resumes the same way, with Last-Event-ID.
			sse := e2etest.ConnectSSE(t, s.HTTPURL("/sse?"+view), map[string][]string{"Last-Event-Id": {rest[2].Cursor}})
			got, _ := readSSE(t, sse, len(rest)-3)
			checkStream(t, append(append(append([]envMsg(nil), first...), rest[:3]...), got...), want)
		})
	}
}

// TestViewsWithGrant: a view applies within the credential's grant and
// its keys: a filter naming a key outside them selects nothing.
func TestViewsWithGrant(t *testing.T) {
	t.Parallel()
	b := e2etest.StartBroker(t, "views-grant", 1)
	keys := filepath.Join(t.TempDir(), "keys")
	writeKeys(t, keys, tenantAKey+" t-a/*\n")
	s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{config.EnvAPIKeysFile: keys}))
	s.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	all := e2etest.Connect(t, s.URL("/ws?"+q("token", tenantAKey, "where", "value.i >= 0", "fields", "i")))
	outside := e2etest.Connect(t, s.URL("/ws?"+q("token", tenantAKey, "where", `key == "t-b/1" || value.i == 15`)))
	glob := e2etest.Connect(t, s.URL("/ws/t-a/*?"+q("token", tenantAKey, "where", `key != "t-a/2"`)))
	produceAuth(p, 0, 20, time.Now())
	for _, i := range which(0, 20, func(k []byte) bool { return strings.HasPrefix(string(k), "t-a/") }) {
		if got := string(all.Next(t)); got != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("got %s, want record %d", got, i)
		}
	}
	all.ExpectQuiet(t)
	if got := string(outside.Next(t)); got != `{"i":15}` { // t-a/1
		t.Fatalf("got %s, want only record 15", got)
	}
	outside.ExpectQuiet(t)
	for _, i := range which(0, 20, func(k []byte) bool { return string(k) == "t-a/1" }) {
		if got := string(glob.Next(t)); got != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("got %s, want record %d", got, i)
		}
	}
	glob.ExpectQuiet(t)
}

// TestViewsRefused: a bad expression, one over the length limit, a bad
// field list and a view over MAX_VIEWS get 400 before the upgrade (and
// over SSE), naming the position or the limit; the clients of the views
// alive are served meanwhile, and a view freed makes room.
func TestViewsRefused(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, e2etest.Env{"MAX_VIEWS": "2"})
	// A type error, while there is room (at MAX_VIEWS a new view is
	// refused before its expression is compiled).
	if status, body := s.Get(t, "/sse?"+q("where", "key > 1")); status != 400 || !strings.Contains(body, "1:5") {
		t.Fatalf("a type error: %d %s, want 400 naming 1:5", status, body)
	}
	a := e2etest.Connect(t, s.URL("/ws?"+q("where", "value.i > 0")))
	b := e2etest.Connect(t, s.URL("/ws?"+q("fields", "i")))
	same := e2etest.Connect(t, s.URL("/ws?"+q("fields", "i"))) // the same view: no new one
	tests := []struct {
		name, query, want string
	}{
		{"syntax", q("where", "value.i >"), "1:10"},
		{"type, at MAX_VIEWS", q("where", "key > 1"), "MAX_VIEWS=2"},
		{"length", q("where", "value.i > "+strings.Repeat("1", 1024)), "over the limit of 1024"},
		{"fields", q("fields", "a,,b"), "path 2"},
		{"max views", q("where", "value.i > 1"), "MAX_VIEWS=2"},
		{"max views, another shape", q("where", "value.i > 0", "envelope", "true"), "MAX_VIEWS=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := e2etest.Context(t)
			defer cancel()
			_, err := e2etest.Dial(ctx, s.URL("/ws?"+tt.query))
			var de *e2etest.DialError
			if !errors.As(err, &de) || de.Status != 400 || !strings.Contains(de.Body, tt.want) {
				t.Fatalf("dial: %v, want 400 naming %q", err, tt.want)
			}
			status, body := s.Get(t, "/sse?"+tt.query)
			if status != 400 || !strings.Contains(body, tt.want) {
				t.Fatalf("SSE: %d %s, want 400 naming %q", status, body, tt.want)
			}
		})
	}
	// The filter of a respelled: the same view, at MAX_VIEWS.
	respelled := e2etest.Connect(t, s.URL("/ws?"+q("where", "(value.i  >  0)")))
	p.ProduceRecords(e2etest.Record([]byte("k"), []byte(`{"i":1,"j":2}`)))
	for _, c := range []*e2etest.Client{a, respelled} {
		if got := string(c.Next(t)); got != `{"i":1,"j":2}` {
			t.Fatalf("filter client got %s", got)
		}
	}
	_ = respelled.Close()
	for _, c := range []*e2etest.Client{b, same} {
		if got := string(c.Next(t)); got != `{"i":1}` {
			t.Fatalf("projection client got %s", got)
		}
	}
	_ = a.Close()
	e2etest.Eventually(t, "a view freed with its last client", func() bool {
		ctx, cancel := e2etest.Context(t)
		defer cancel()
		c, err := e2etest.Dial(ctx, s.URL("/ws?"+q("where", "value.i > 1")))
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	_, body := s.Get(t, "/metrics")
	if !strings.Contains(body, "wsdest_views_refused_total ") || strings.Contains(body, "wsdest_views_refused_total 0\n") {
		t.Fatal("refusals at MAX_VIEWS not counted in wsdest_views_refused_total")
	}
}

// TestViewsHostile: an expression whose evaluation runs to CEL's cost
// limit is stopped there, record by record, counted, and its client gets
// nothing, while other clients keep being served; a regular expression
// over a text whose work (its length times the pattern's program) is over
// the cost limit's worth is refused without running, counted likewise.
func TestViewsHostile(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, nil)
	hundred := "[" + strings.Repeat("0,1,2,3,4,5,6,7,8,9,", 9) + "0,1,2,3,4,5,6,7,8,9]"
	hostile := e2etest.Connect(t, s.URL("/ws?"+q("where",
		hundred+".all(a, "+hundred+".all(b, a+b >= 0 && a*b >= 0))")))
	regex := e2etest.Connect(t, s.URL("/ws?"+q("where", `value.s.matches("^(a+)+$")`)))
	plain := e2etest.Connect(t, s.URL("/ws"))
	evil := `{"s":"` + strings.Repeat("a", 4096) + `!"}`
	var recs []*kgo.Record
	for range 20 {
		recs = append(recs, e2etest.Record([]byte("k"), []byte(evil)))
	}
	recs = append(recs, e2etest.Record([]byte("k"), []byte(`{"s":"aaaa"}`)))
	p.ProduceRecords(recs...)
	if n := len(plain.NextN(t, 21)); n != 21 {
		t.Fatal(n)
	}
	if got := string(regex.Next(t)); got != `{"s":"aaaa"}` {
		t.Fatalf("regex client got %s", got)
	}
	regex.ExpectQuiet(t)
	hostile.ExpectQuiet(t)
	ctx, cancel := context.WithTimeout(t.Context(), e2etest.Wait)
	defer cancel()
	if err := e2etest.WaitFor(ctx, 20*time.Millisecond, func() bool {
		_, body := s.Get(t, "/metrics")
		return strings.Contains(body, "wsdest_view_eval_errors_total 41\n")
	}); err != nil {
		_, body := s.Get(t, "/metrics")
		t.Fatalf("the cost limit did not stop each of 21 evaluations and 20 matches: %v\n%s", err, grepLines(body, "wsdest_view"))
	}
}

// TestViewsLast: last=N takes the N most recent records, then the view.
func TestViewsLast(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, nil)
	produceN(p, 0, 10, time.Time{})
	plain := e2etest.Connect(t, s.URL("/ws?last=10"))
	plain.NextN(t, 10) // all ten are in the history
	c := e2etest.Connect(t, s.URL("/ws?"+q("last", "6", "where", "int(value.i) % 3 == 0", "fields", "i")))
	for _, want := range []string{`{"i":6}`, `{"i":9}`} {
		if got := string(c.Next(t)); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	c.ExpectQuiet(t)
}

// TestViewsPerIP: the clients of one address hold at most
// MAX_VIEWS_PER_IP distinct views: one more is a 400 naming the limit
// (WebSocket and SSE), more clients of a view held are served, and a view
// given back with its last client makes room (given back for the address
// that held it).
func TestViewsPerIP(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, e2etest.Env{"MAX_VIEWS_PER_IP": "1"})
	a := e2etest.Connect(t, s.URL("/ws?"+q("where", "value.i > 0")))
	again := e2etest.Connect(t, s.URL("/ws?"+q("where", "value.i>0")))
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	_, err := e2etest.Dial(ctx, s.URL("/ws?"+q("fields", "i")))
	var de *e2etest.DialError
	if !errors.As(err, &de) || de.Status != 400 || !strings.Contains(de.Body, "MAX_VIEWS_PER_IP=1") {
		t.Fatalf("a second distinct view: %v, want 400 naming MAX_VIEWS_PER_IP=1", err)
	}
	if status, body := s.Get(t, "/sse?"+q("fields", "i")); status != 400 || !strings.Contains(body, "MAX_VIEWS_PER_IP=1") {
		t.Fatalf("SSE: %d %s, want 400 naming MAX_VIEWS_PER_IP=1", status, body)
	}
	p.ProduceRecords(e2etest.Record([]byte("k"), []byte(`{"i":1}`)))
	for _, c := range []*e2etest.Client{a, again} {
		if got := string(c.Next(t)); got != `{"i":1}` {
			t.Fatalf("got %s", got)
		}
	}
	_ = a.Close()
	_ = again.Close()
	e2etest.Eventually(t, "the address's view given back with its last client", func() bool {
		ctx, cancel := e2etest.Context(t)
		defer cancel()
		c, err := e2etest.Dial(ctx, s.URL("/ws?"+q("fields", "i")))
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
}
