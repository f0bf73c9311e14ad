package service_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/encode"
)

// start runs a broker with topic "t" of the given partitions and a service
// consuming it with env's extra settings, and waits until the service is
// ready: from then on, every record produced is delivered.
func start(t *testing.T, partitions int32, env e2etest.Env) (*e2etest.Broker, *e2etest.Producer, *e2etest.Service) {
	t.Helper()
	b := e2etest.StartBroker(t, "t", partitions)
	s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(env))
	s.WaitReady(t)
	return b, e2etest.NewProducer(t, b), s
}

// envelope is the envelope shape, decoded.
type envelope struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Timestamp int64           `json:"timestamp"`
	Key       json.RawMessage `json:"key"`
	Headers   map[string]any  `json:"headers"`
	Value     json.RawMessage `json:"value"`
}

func decodeEnvelope(t *testing.T, frame []byte) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(frame, &e); err != nil {
		t.Fatalf("envelope %s: %v", frame, err)
	}
	return e
}

// TestEveryClientGetsEveryRecordInOrder: several clients on /ws (one of
// them in the envelope shape) receive every record exactly once, each
// key's records in produce order, each partition's in offset order, the
// plain frames byte-identical to the values.
func TestEveryClientGetsEveryRecordInOrder(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 3, nil)

	const plainClients, records, keys = 4, 200, 9
	var clients []*e2etest.Client
	for range plainClients {
		clients = append(clients, e2etest.Connect(t, s.URL("/ws")))
	}
	env := e2etest.Connect(t, s.URL("/ws?envelope=true"))

	type sent struct {
		key, value string
		partition  int32
		offset     int64
		timestamp  int64 // ms
	}
	var want []sent
	byValue := map[string]int{}
	// Produce in a few batches, so that fetches and publishes interleave
	// with the clients' reads.
	for batch := 0; batch < records; batch += 50 {
		recs := make([]*kgo.Record, 0, 50)
		for i := batch; i < batch+50; i++ {
			key := fmt.Sprintf("key-%d", i%keys)
			// Values of different sizes and characters, all valid JSON.
			value := fmt.Sprintf(`{"key":%q,"seq":%d,"pad":%q,"s":"é\u00e9\n"}`, key, i, strings.Repeat("x", i%37))
			recs = append(recs, e2etest.Record([]byte(key), []byte(value)))
		}
		p.ProduceRecords(recs...)
		for _, r := range recs {
			byValue[string(r.Value)] = len(want)
			want = append(want, sent{key: string(r.Key), value: string(r.Value), partition: r.Partition, offset: r.Offset, timestamp: r.Timestamp.UnixMilli()})
		}
	}
	partitions := map[int32]bool{}
	for _, w := range want {
		partitions[w.partition] = true
	}
	if len(partitions) != 3 {
		t.Fatalf("records went to %d partitions, want 3 (pick other keys)", len(partitions))
	}

	for ci, c := range clients {
		got := c.NextN(t, records)
		seen := make([]bool, records)
		lastSeq := map[string]int{}
		for _, g := range got {
			i, ok := byValue[string(g)]
			if !ok {
				t.Fatalf("client %d: frame %q is no value produced", ci, g)
			}
			if seen[i] {
				t.Fatalf("client %d: record %d received twice", ci, i)
			}
			seen[i] = true
			if last, ok := lastSeq[want[i].key]; ok && last > i {
				t.Errorf("client %d: key %s: record %d after %d", ci, want[i].key, i, last)
			}
			lastSeq[want[i].key] = i
		}
		c.ExpectQuiet(t)
	}

	lastOffset := map[int32]int64{}
	for range records {
		e := decodeEnvelope(t, env.Next(t))
		i, ok := byValue[string(e.Value)]
		if !ok {
			t.Fatalf("envelope value %s is no value produced", e.Value)
		}
		w := want[i]
		if e.Topic != "t" || e.Partition != w.partition || e.Offset != w.offset || string(e.Key) != fmt.Sprintf("%q", w.key) || e.Timestamp != w.timestamp {
			t.Errorf("envelope of record %d: topic %q %d@%d key %s at %d, want t %d@%d %q at %d",
				i, e.Topic, e.Partition, e.Offset, e.Key, e.Timestamp, w.partition, w.offset, w.key, w.timestamp)
		}
		if last, ok := lastOffset[e.Partition]; ok && e.Offset <= last {
			t.Errorf("partition %d: offset %d after %d", e.Partition, e.Offset, last)
		}
		lastOffset[e.Partition] = e.Offset
	}
	env.ExpectQuiet(t)

	st := s.Stats(t)
	if st.Hub.Clients != plainClients+1 {
		t.Errorf("stats: %d clients, want %d", st.Hub.Clients, plainClients+1)
	}
	if st.Decoder.Records != records {
		t.Errorf("stats: %d records decoded, want %d", st.Decoder.Records, records)
	}
}

// TestKeyRouting connects one client per form of subscription and checks
// that each receives exactly the records its keys select, in order; records
// with a null key go only to clients that asked for everything.
func TestKeyRouting(t *testing.T) {
	t.Parallel()
	// One partition: the records' order is total, so a client that got its
	// last record has been offered every earlier one.
	_, p, s := start(t, 1, nil)

	records := []struct {
		name string
		key  []byte
	}{
		{"car-1", []byte("car-1")},
		{"car-2", []byte("car-2")},
		{"car-10", []byte("car-10")},
		{"a", []byte("a")},
		{"b", []byte("b")},
		{"c", []byte("c")},
		{"sensor-1", []byte("sensor-1")},
		{"sensor-", []byte("sensor-")},
		{"sensorX", []byte("sensorX")},
		{"null key", nil},
		{"empty key", []byte{}},
		{"a/b", []byte("a/b")},
	}
	all := make([]string, len(records))
	for i, r := range records {
		all[i] = r.name
	}
	clients := []struct {
		path string
		want []string
	}{
		{"/ws", all},
		{"/ws/", all},
		{"/", all},
		{"/*", all},
		{"/ws/*", all},
		{"/ws?key=*", all},
		{"/ws/car-1", []string{"car-1"}},
		{"/car-1", []string{"car-1"}}, // the Python sample's form
		{"/ws/a/b", []string{"a/b"}},
		{"/ws?key=a&key=b", []string{"a", "b"}},
		{"/ws/a?key=c", []string{"a", "c"}},
		{"/ws?key=sensor-*", []string{"sensor-1", "sensor-"}},
		{"/ws?key=car-?", []string{"car-1", "car-2"}},
		{"/ws?key=car-%3F&key=a", []string{"car-1", "car-2", "a"}},
		{"/ws?key=*-1", []string{"car-1", "sensor-1"}},
		{"/ws/nothing-matches", nil},
	}
	conns := make([]*e2etest.Client, len(clients))
	for i, c := range clients {
		conns[i] = e2etest.Connect(t, s.URL(c.path))
	}
	for _, r := range records {
		p.Produce(r.key, fmt.Appendf(nil, `{"record":%q}`, r.name))
	}
	// The first client takes everything and is read first: once it has the
	// last record, every record has been published.
	for i, c := range clients {
		for _, name := range c.want {
			got := conns[i].Next(t)
			if want := fmt.Sprintf(`{"record":%q}`, name); string(got) != want {
				t.Fatalf("%s: got %s, want %s", c.path, got, want)
			}
		}
	}
	for i, c := range clients {
		t.Run(c.path, func(t *testing.T) { conns[i].ExpectQuiet(t) })
	}
}

// TestAuth connects with good and bad credentials to a service with API
// keys and to one with Basic credentials. Rejected clients complete the
// handshake and are closed with 1008 before any data, with a reason that
// says what to do: a request with no credential where wsdest reads one
// (none at all, ?api_key=, ?access_token=, ?Token=) is pointed at
// ?token=, a wrong one is not accepted; the log names their address and
// never a credential.
func TestAuth(t *testing.T) {
	t.Parallel()
	const (
		key      = "s3cret-key-2"
		user     = "ws-user"
		password = "pa55 w0rd"
		wrongKey = "wr0ng-key-xyz"
		wrongPwd = "wr0ng-pa55"
	)
	b := e2etest.StartBroker(t, "t", 1)
	svcs := map[string]*e2etest.Service{
		// At debug level, so that every line a request could produce is
		// checked for secrets.
		"keys":  e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{"AUTH_API_KEYS": "k1, " + key, "LOG_LEVEL": "debug"})),
		"basic": e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{"WS_USERNAME": user, "WS_PASSWORD": password, "LOG_LEVEL": "debug"})),
	}
	for _, s := range svcs {
		s.WaitReady(t)
	}
	p := e2etest.NewProducer(t, b)

	tests := []struct {
		name    string
		service string
		path    string
		opts    []e2etest.DialOption
		accept  bool
		refusal string // the close reason when not accepted
	}{
		{"token query", "keys", "/ws?token=" + key, nil, true, ""},
		{"first of several keys", "keys", "/ws?token=k1", nil, true, ""},
		{"bearer", "keys", "/ws", []e2etest.DialOption{e2etest.WithBearer(key)}, true, ""},
		{"token on a key route", "keys", "/ws/car-1?token=" + key, nil, true, ""},
		{"wrong token", "keys", "/ws?token=" + wrongKey, nil, false, "credential not accepted"},
		{"missing token", "keys", "/ws", nil, false, "no credential: use ?token=KEY, Authorization: Bearer or Basic"},
		{"api_key", "keys", "/ws?api_key=" + key, nil, false, "no credential: use ?token=KEY, Authorization: Bearer or Basic"},
		{"access_token", "keys", "/ws?access_token=" + key, nil, false, "no credential: use ?token=KEY, Authorization: Bearer or Basic"},
		{"Token in another case", "keys", "/ws?Token=" + key, nil, false, "no credential: use ?token=KEY, Authorization: Bearer or Basic"},
		{"empty token", "keys", "/ws?token=", nil, false, "no credential: use ?token=KEY, Authorization: Bearer or Basic"},
		{"wrong bearer", "keys", "/ws", []e2etest.DialOption{e2etest.WithBearer(wrongKey)}, false, "credential not accepted"},
		{"basic with only API keys", "keys", "/ws", []e2etest.DialOption{e2etest.WithBasic(user, key)}, false, "credential not accepted"},
		{"basic", "basic", "/ws", []e2etest.DialOption{e2etest.WithBasic(user, password)}, true, ""},
		{"wrong password", "basic", "/ws", []e2etest.DialOption{e2etest.WithBasic(user, wrongPwd)}, false, "credential not accepted"},
		{"wrong user", "basic", "/ws", []e2etest.DialOption{e2etest.WithBasic("someone", password)}, false, "credential not accepted"},
		{"token with only basic", "basic", "/ws?token=" + url.QueryEscape(password), nil, false, "credential not accepted"},
	}
	conns := make([]*e2etest.Client, len(tests))
	for i, tt := range tests {
		opts := tt.opts
		if !tt.accept {
			opts = append(opts, e2etest.NoSync()) // never subscribed: no pong
		}
		conns[i] = e2etest.Connect(t, svcs[tt.service].URL(tt.path), opts...)
	}
	// Every accepted client gets this record; no rejected one may.
	const value = `{"n":1}`
	p.Produce([]byte("car-1"), []byte(value))

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := conns[i]
			if tt.accept {
				if got := c.Next(t); string(got) != value {
					t.Errorf("got %s, want %s", got, value)
				}
				return
			}
			c.ExpectClose(t, 1008, tt.refusal)
			lines := svcs[tt.service].Log.Lines("remote=" + c.LocalAddr())
			if len(lines) != 1 || !strings.Contains(lines[0], "client rejected") {
				t.Errorf("log lines for %s: %q, want one rejection", c.LocalAddr(), lines)
			}
		})
	}

	secrets := []string{key, wrongKey, password, wrongPwd, url.QueryEscape(password)}
	for _, up := range [][2]string{{user, password}, {user, wrongPwd}, {user, key}, {"someone", password}} {
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(up[0]+":"+up[1])))
	}
	for name, s := range svcs {
		log := s.Log.String()
		for _, secret := range secrets {
			if strings.Contains(log, secret) {
				t.Errorf("%s service log contains the secret %q:\n%s", name, secret, log)
			}
		}
	}
}

// TestBadRecordsSkipped produces records that cannot go out as plain JSON,
// and broken Quix records, between good ones: plain clients get only the
// good ones, envelope clients get everything but the broken Quix records,
// and the stream goes on.
func TestBadRecordsSkipped(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, nil)
	plain := e2etest.Connect(t, s.URL("/ws"))
	env := e2etest.Connect(t, s.URL("/ws?envelope=true"))

	big := fmt.Appendf(nil, `{"blob":%q}`, strings.Repeat("0123456789abcdef", 2<<20/16))
	quixHeaders := func(model, codec string) []kgo.RecordHeader {
		return []kgo.RecordHeader{e2etest.Header("__Q_ModelKey", model), e2etest.Header("__Q_CodecId", codec)}
	}
	records := []struct {
		name    string
		key     []byte
		value   []byte
		headers []kgo.RecordHeader
		plain   bool   // delivered to plain clients as is
		env     string // the envelope's value; "" = not delivered in the envelope shape
	}{
		{name: "good", key: []byte("k"), value: []byte(`{"n":1}`), plain: true, env: `{"n":1}`},
		{name: "text", key: []byte("k"), value: []byte("hello, not json"), env: `"hello, not json"`},
		{name: "binary", key: []byte("k"), value: []byte{0xff, 0xfe, 0, 1}, env: `{"base64":"//4AAQ=="}`},
		{name: "empty", key: []byte("k"), value: []byte{}, env: `""`},
		{name: "tombstone", key: []byte("k"), value: nil, env: `null`},
		{name: "null key", key: nil, value: []byte(`{"n":"null key"}`), plain: true, env: `{"n":"null key"}`},
		{name: "invalid UTF-8 in JSON", key: []byte("k"), value: []byte("{\"s\":\"\xff\"}"), env: `{"base64":"eyJzIjoi/yJ9"}`},
		{name: "truncated JSON", key: []byte("k"), value: []byte(`{"a":`), env: `"{\"a\":"`},
		{name: "JSON then garbage", key: []byte("k"), value: []byte(`{"a":1} x`), env: `"{\"a\":1} x"`},
		{name: "quix column longer than timestamps", key: []byte("k"), headers: quixHeaders("TimeseriesData", "JT"),
			value: []byte(`{"Timestamps":[1],"NumericValues":{"a":[1,2]}}`)},
		{name: "quix payload not JSON", key: []byte("k"), headers: quixHeaders("EventData", "JT"), value: []byte(`{"Id":`)},
		{name: "quix gzip that is not gzip", key: []byte("k"), headers: quixHeaders("TimeseriesData", "[GZIP]JT"), value: []byte(`{"Timestamps":[1]}`)},
		{name: "legacy quix, Timestamps not an array", key: []byte("k"), value: []byte(`{"C":"JT","K":"ParameterData","V":{"Timestamps":"x"}}`)},
		{name: "quix protobuf codec", key: []byte("k"), headers: quixHeaders("TimeseriesData", "PB"), value: []byte{8, 1}},
		{name: "quix split message", key: []byte("k"), headers: append(quixHeaders("TimeseriesData", "JT"), e2etest.Header("__Q_SplitMessageId", "1")),
			value: []byte(`{"Timestamps":[1]}`)},
		{name: "2 MiB JSON", key: []byte("k"), value: big, plain: true, env: string(big)},
		{name: "good after", key: []byte("k"), value: []byte(`{"n":2}`), plain: true, env: `{"n":2}`},
	}
	recs := make([]*kgo.Record, len(records))
	for i, r := range records {
		recs[i] = e2etest.Record(r.key, r.value, r.headers...)
	}
	p.ProduceRecords(recs...)

	for _, r := range records {
		if !r.plain {
			continue
		}
		if got := plain.Next(t); !bytes.Equal(got, r.value) {
			t.Fatalf("plain: got %.100q (%d bytes), want record %q (%d bytes)", got, len(got), r.name, len(r.value))
		}
	}
	plain.ExpectQuiet(t)

	for i, r := range records {
		if r.env == "" {
			continue
		}
		e := decodeEnvelope(t, env.Next(t))
		if string(e.Value) != r.env {
			t.Errorf("envelope of %q: value %.100s, want %.100s", r.name, e.Value, r.env)
		}
		wantKey := "null"
		if r.key != nil {
			wantKey = fmt.Sprintf("%q", r.key)
		}
		if e.Offset != recs[i].Offset || string(e.Key) != wantKey {
			t.Errorf("envelope of %q: offset %d key %s, want %d %s", r.name, e.Offset, e.Key, recs[i].Offset, wantKey)
		}
	}
	env.ExpectQuiet(t)

	skipped := s.Stats(t).Decoder.Skipped
	want := map[string]uint64{"not_json": 3, "not_utf8": 2, "empty": 1, "tombstone": 1, "quix_malformed": 4, "quix_unsupported": 2, "quix_protocol": 0}
	for reason, n := range want {
		if got := skipped[encode.SkipReason(reason)]; got != n {
			t.Errorf("stats: skipped %s = %d, want %d", reason, got, n)
		}
	}
}

// TestRecordOverQueueBound: a record larger than MAX_QUEUE_BYTES can never
// be queued, so every client it is routed to is closed with 1008 "too
// slow", however fast it reads; clients it is not routed to keep going.
// A record whose frame is larger than a client's whole queue can never be
// delivered: it is skipped, counted and logged, and every client stays
// connected and gets the records after it.
func TestRecordOverQueueBound(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, e2etest.Env{"MAX_QUEUE_BYTES": "64KiB"})
	all := e2etest.Connect(t, s.URL("/ws"))
	other := e2etest.Connect(t, s.URL("/ws/other"))

	p.Produce([]byte("big"), fmt.Appendf(nil, `{"blob":%q}`, strings.Repeat("x", 100<<10)))
	p.Produce([]byte("other"), []byte(`{"n":1}`))
	for _, c := range []*e2etest.Client{all, other} {
		if got := c.Next(t); string(got) != `{"n":1}` {
			t.Errorf("client got %.40s, want the record after the oversized one", got)
		}
	}
	st := s.Stats(t)
	if st.Hub.Oversized != 1 || st.Hub.Closes["queue_full"] != 0 {
		t.Errorf("oversized = %d, queue_full closes = %d; want 1 and 0", st.Hub.Oversized, st.Hub.Closes["queue_full"])
	}
	if n := len(s.Log.Lines("record larger than a client's queue bound skipped")); n != 1 {
		t.Errorf("%d oversized warnings logged, want 1", n)
	}
}

// legacyEnvelope is the legacy example of quix-formats.md, verbatim.
const legacyEnvelope = `{"C":"JT","K":"ParameterData","V":{"BinaryValues":{},"StringValues":{"c":["string"]},"NumericValues":{"a":[1],"b":[1.1]},"Timestamps":[123123123],"TagValues":{"tag1":["tag"]}},"S":34,"E":183}`

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestQuixFormats streams Quix-formatted records to a service with
// FORMAT=auto (the default), with a plain and an envelope client, and to
// one with FORMAT=raw. Auto decodes each record into its rows, in row
// order, and drops protocol messages; raw passes JSON values through
// unchanged.
func TestQuixFormats(t *testing.T) {
	t.Parallel()
	b := e2etest.StartBroker(t, "t", 1)
	auto := e2etest.StartService(t, e2etest.BrokerEnv(b))
	raw := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{"FORMAT": "raw"}))
	auto.WaitReady(t)
	raw.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	autoPlain := e2etest.Connect(t, auto.URL("/ws"))
	autoEnv := e2etest.Connect(t, auto.URL("/ws?envelope=true"))
	rawPlain := e2etest.Connect(t, raw.URL("/ws"))

	h := func(model, codec string) []kgo.RecordHeader {
		return []kgo.RecordHeader{e2etest.Header("__Q_ModelKey", model), e2etest.Header("__Q_CodecId", codec)}
	}
	const ts = `{"Timestamps":[1692703362840389000,1692703362840389001,1692703362840389002],` +
		`"NumericValues":{"speed":[1,2.50,null],"rpm":[null,12345678901234567890,3]},` +
		`"StringValues":{"gear":["N","1",null]},` +
		`"BinaryValues":{"raw":["AQI=",null,"Aw=="]},` +
		`"TagValues":{"car":["A",null,"B"]}}`
	tsRows := []string{
		`{"speed":1,"rpm":null,"gear":"N","raw":"AQI=","Tags":{"car":"A"},"Timestamp":1692703362840389000}`,
		`{"speed":2.50,"rpm":12345678901234567890,"gear":"1","raw":null,"Tags":{"car":null},"Timestamp":1692703362840389001}`,
		`{"speed":null,"rpm":3,"gear":null,"raw":"Aw==","Tags":{"car":"B"},"Timestamp":1692703362840389002}`,
	}
	const event = `{"Id":"lap","Value":"7","Tags":{"car":"A"},"Timestamp":1692703362840389000}`
	const events = `[{"Timestamp":1,"Id":"a","Value":"x","Tags":{"t":"1"}},{"Timestamp":2,"Id":"b","Value":"y"}]`
	records := []struct {
		name    string
		headers []kgo.RecordHeader
		value   []byte
		rows    []string // what FORMAT=auto sends
		raw     bool     // FORMAT=raw sends the value as is
	}{
		{"timeseries headers", h("TimeseriesData", "JT"), []byte(ts), tsRows, true},
		{"parameter data headers, codec J", h("ParameterData", "J"), []byte(`{"Timestamps":[5],"NumericValues":{"x":[-0.5e3]}}`),
			[]string{`{"x":-0.5e3,"Tags":{},"Timestamp":5}`}, true},
		{"legacy envelope", nil, []byte(legacyEnvelope),
			[]string{`{"a":1,"b":1.1,"c":"string","Tags":{"tag1":"tag"},"Timestamp":123123123}`}, true},
		{"timeseries gzip", h("TimeseriesData", "[GZIP]JT"), gzipped(t, ts), tsRows, false},
		{"stream properties", h("StreamProperties", "JT"), []byte(`{"Name":"car A"}`), nil, true},
		{"event data", h("EventData", "JT"), []byte(event),
			[]string{`{"Timestamp":1692703362840389000,"Id":"lap","Value":"7","Tags":{"car":"A"}}`}, true},
		{"parameter definitions", h("ParameterDefinitions", "JT"), []byte(`{"Parameters":[]}`), nil, true},
		{"event data list", h("EventData[]", "JT"), []byte(events),
			[]string{`{"Timestamp":1,"Id":"a","Value":"x","Tags":{"t":"1"}}`, `{"Timestamp":2,"Id":"b","Value":"y","Tags":{}}`}, true},
		{"legacy stream properties", nil, []byte(`{"C":"JT","K":"StreamProperties","V":{"Name":"x"},"S":0,"E":0}`), nil, true},
		{"stream end", h("StreamEnd", "JT"), nil, nil, false},
		{"plain JSON", nil, []byte(`{"plain":true}`), []string{`{"plain":true}`}, true},
	}
	recs := make([]*kgo.Record, len(records))
	for i, r := range records {
		recs[i] = e2etest.Record([]byte("car-A"), r.value, r.headers...)
	}
	p.ProduceRecords(recs...)

	for i, r := range records {
		for _, row := range r.rows {
			if got := autoPlain.Next(t); string(got) != row {
				t.Errorf("auto, plain: %s: got %s, want %s", r.name, got, row)
			}
			e := decodeEnvelope(t, autoEnv.Next(t))
			if string(e.Value) != row || e.Offset != recs[i].Offset || string(e.Key) != `"car-A"` {
				t.Errorf("auto, envelope: %s: got value %s at %d key %s, want %s at %d", r.name, e.Value, e.Offset, e.Key, row, recs[i].Offset)
			}
			if r.headers != nil && e.Headers["__Q_ModelKey"] != string(r.headers[0].Value) {
				t.Errorf("auto, envelope: %s: headers %v", r.name, e.Headers)
			}
		}
		if r.raw {
			if got := rawPlain.Next(t); !bytes.Equal(got, r.value) {
				t.Errorf("raw: %s: got %s, want the value unchanged", r.name, got)
			}
		}
	}
	autoPlain.ExpectQuiet(t)
	autoEnv.ExpectQuiet(t)
	rawPlain.ExpectQuiet(t)
}

// TestClientGarbage sends broken or unusual frames from one client at a
// time while a healthy client keeps receiving records.
func TestClientGarbage(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, nil)
	healthy := e2etest.Connect(t, s.URL("/ws"))
	seq := 0
	stillStreaming := func(t *testing.T) {
		t.Helper()
		seq++
		want := fmt.Sprintf(`{"seq":%d}`, seq)
		p.Produce([]byte("k"), []byte(want))
		if got := healthy.Next(t); string(got) != want {
			t.Fatalf("healthy client got %s, want %s", got, want)
		}
	}

	closes := []struct {
		name   string
		send   []byte
		code   uint16
		reason string
	}{
		{"unmasked frame", []byte{0x81, 0x02, 'h', 'i'}, 1002, "client frame not masked"},
		{"unknown opcode", e2etest.MaskedFrame(true, 0x3, []byte("x")), 1002, "unknown opcode"},
		{"reserved bits", append([]byte{0xC1}, e2etest.MaskedFrame(true, ws.OpText, []byte("x"))[1:]...), 1002, "reserved bits set"},
		{"HTTP request instead of frames", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 1002, "reserved bits set"},
		{"random bytes", []byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03}, 1002, "reserved bits set"},
		{"continuation without a message", e2etest.MaskedFrame(true, ws.OpContinuation, []byte("x")), 1002, "unexpected continuation frame"},
		{"fragmented ping", e2etest.MaskedFrame(false, ws.OpPing, nil), 1002, "fragmented control frame"},
		{"invalid close code", e2etest.MaskedFrame(true, ws.OpClose, []byte{0x03, 0xED}), 1002, "invalid close code"},
		{"10 KiB message", e2etest.MaskedFrame(true, ws.OpText, bytes.Repeat([]byte("x"), 10<<10)), 1009, "message too big"},
		{"10 KiB in fragments", slices.Concat(
			e2etest.MaskedFrame(false, ws.OpBinary, make([]byte, 4000)),
			e2etest.MaskedFrame(false, ws.OpContinuation, make([]byte, 4000)),
			e2etest.MaskedFrame(true, ws.OpContinuation, make([]byte, 2240))), 1009, "message too big"},
	}
	for _, tt := range closes {
		t.Run(tt.name, func(t *testing.T) {
			c := e2etest.Connect(t, s.URL("/ws"))
			if err := c.WriteRaw(tt.send); err != nil {
				t.Fatal(err)
			}
			// Records published while it connected may come first.
			c.ExpectCloseAfterData(t, tt.code, tt.reason)
			stillStreaming(t)
		})
	}

	t.Run("ping gets a pong", func(t *testing.T) {
		c := e2etest.Connect(t, s.URL("/ws"))
		payload := []byte("are you there?")
		if err := c.WriteFrame(ws.OpPing, payload); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := e2etest.Context(t)
		defer cancel()
		for {
			f, err := c.ReadFrame(ctx)
			if err != nil {
				t.Fatalf("no pong: %v", err)
			}
			if f.Op == ws.OpText {
				continue // published while it connected
			}
			if f.Op != ws.OpPong || !bytes.Equal(f.Payload, payload) {
				t.Fatalf("got %v, want a pong with the ping's payload", f)
			}
			break
		}
		stillStreaming(t)
		nextSeq(t, c, seq)
	})

	t.Run("client messages are ignored", func(t *testing.T) {
		c := e2etest.Connect(t, s.URL("/ws"))
		for _, f := range [][]byte{
			e2etest.MaskedFrame(true, ws.OpText, []byte(`{"subscribe":"x"}`)),
			e2etest.MaskedFrame(true, ws.OpBinary, make([]byte, 4096)),
			e2etest.MaskedFrame(true, ws.OpPong, []byte("unsolicited")),
			e2etest.MaskedFrame(false, ws.OpText, []byte("frag")),
			e2etest.MaskedFrame(true, ws.OpPing, []byte("in between")),
			e2etest.MaskedFrame(true, ws.OpContinuation, []byte("ment")),
		} {
			if err := c.WriteRaw(f); err != nil {
				t.Fatal(err)
			}
		}
		stillStreaming(t)
		nextSeq(t, c, seq)
	})

	t.Run("close is echoed", func(t *testing.T) {
		c := e2etest.Connect(t, s.URL("/ws"))
		if err := c.WriteFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")); err != nil {
			t.Fatal(err)
		}
		c.ExpectCloseAfterData(t, 1000, "")
		stillStreaming(t)
	})

	t.Run("hang-up without close", func(t *testing.T) {
		c := e2etest.Connect(t, s.URL("/ws"))
		c.Close()
		stillStreaming(t)
	})

	e2etest.Eventually(t, "every garbage client gone", func() bool { return s.Stats(t).Hub.Clients == 1 })
	st := s.Stats(t).Hub.Closes
	if st["protocol_error"] != 8 || st["message_too_big"] != 2 {
		t.Errorf("closes: %v, want 8 protocol_error and 2 message_too_big", st)
	}
}

// nextSeq reads c until the record {"seq":want}, skipping earlier ones: a
// client that connects while a record is being published may or may not
// get it.
func nextSeq(t *testing.T, c *e2etest.Client, want int) {
	t.Helper()
	for {
		var v struct{ Seq int }
		got := c.Next(t)
		if err := json.Unmarshal(got, &v); err != nil || v.Seq > want {
			t.Fatalf("got %s, want seq %d", got, want)
		}
		if v.Seq == want {
			return
		}
	}
}

// TestHTTPEndpoints checks the answers to plain HTTP requests and to bad
// WebSocket requests.
func TestHTTPEndpoints(t *testing.T) {
	t.Parallel()
	_, _, s := start(t, 1, nil)
	for _, tt := range []struct {
		path   string
		status int
		body   string
	}{
		{"/ws", 426, "WebSocket"},
		{"/ws/car-1", 426, "WebSocket"},
		{"/car-1", 426, "WebSocket"},
		{"/", 426, "WebSocket"},
		{"/healthz", 200, "ok"},
		{"/readyz", 200, "ready"},
		{"/stats", 200, `"hub"`},
	} {
		t.Run("GET "+tt.path, func(t *testing.T) {
			status, body := s.Get(t, tt.path)
			if status != tt.status || !strings.Contains(body, tt.body) {
				t.Errorf("GET %s = %d %q, want %d with %q", tt.path, status, body, tt.status, tt.body)
			}
		})
	}
	for _, tt := range []struct {
		path string
		body string
	}{
		{"/ws?envelope=maybe", "envelope"},
		{"/ws?key=", "key"},
	} {
		t.Run("websocket "+tt.path, func(t *testing.T) {
			ctx, cancel := e2etest.Context(t)
			defer cancel()
			_, err := e2etest.Dial(ctx, s.URL(tt.path))
			var de *e2etest.DialError
			if !errors.As(err, &de) || de.Status != 400 || !strings.Contains(de.Body, tt.body) {
				t.Errorf("dial %s: %v, want status 400 mentioning %q", tt.path, err, tt.body)
			}
		})
	}
}

// TestStalledClient: a client that stops reading is closed once its queue
// overflows, while a healthy client receives every record. The stalled
// client has a small receive buffer and the service a small send buffer, so
// the kernel absorbs little of what the stalled client does not read.
func TestStalledClient(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, e2etest.Env{"MAX_QUEUE_BYTES": "64KiB", "SOCKET_SEND_BUFFER": "16KiB"})
	healthy := e2etest.Connect(t, s.URL("/ws"))
	stalled := e2etest.Connect(t, s.URL("/ws"), e2etest.WithReadBuffer(16<<10))

	// 2000 records of about 1 KiB, 2 MiB in all: far more than the
	// stalled client's queue and socket buffers can hold. They are
	// produced in batches the healthy client must take before the next,
	// so that its queue never holds more than one batch (25 KiB).
	const records, batch = 2000, 25
	pad := strings.Repeat("x", 1000)
	for i := 0; i < records; i += batch {
		recs := make([]*kgo.Record, batch)
		for j := range recs {
			recs[j] = e2etest.Record([]byte("k"), fmt.Appendf(nil, `{"seq":%d,"pad":%q}`, i+j, pad))
		}
		p.ProduceRecords(recs...)
		for j := range recs {
			if got := healthy.Next(t); !bytes.Equal(got, recs[j].Value) {
				t.Fatalf("healthy client: got %.40s..., want seq %d", got, i+j)
			}
		}
	}

	// The stalled client reads at last: what the kernel held, then the
	// close frame its writer was blocked behind, unless its write timed
	// out first and the connection was dropped.
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	code, reason, data, err := stalled.ReadUntilClose(ctx)
	switch {
	case err == nil && (code != 1008 || reason != "too slow"):
		t.Errorf("stalled client closed with %d %q, want 1008 \"too slow\"", code, reason)
	case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF):
		t.Errorf("stalled client: %v, want a close frame or a dropped connection", err)
	}
	if data >= records {
		t.Errorf("stalled client got all %d records", data)
	}
	t.Logf("stalled client got %d records, then %d %q (err %v)", data, code, reason, err)
	e2etest.Eventually(t, "queue_full close counted", func() bool { return s.Stats(t).Hub.Closes["queue_full"] == 1 })
	healthy.ExpectQuiet(t)
}

// TestBrokerRestart stops the broker under a running service and starts an
// empty one on the same port: the connected clients stay, /readyz reports
// the outage, one warning is logged, and records produced after the
// restart reach the clients.
func TestBrokerRestart(t *testing.T) {
	t.Parallel()
	b, p, s := start(t, 3, nil)
	clients := []*e2etest.Client{e2etest.Connect(t, s.URL("/ws")), e2etest.Connect(t, s.URL("/ws/k1"))}
	p.Produce([]byte("k1"), []byte(`{"before":1}`))
	for _, c := range clients {
		if got := c.Next(t); string(got) != `{"before":1}` {
			t.Fatalf("got %s before the restart", got)
		}
	}

	b.Stop()
	s.WaitUnready(t)
	b.Restart(t)
	s.WaitReady(t)

	p = e2etest.NewProducer(t, b) // the old producer holds the old topic's id
	for i := range 5 {
		p.Produce([]byte("k1"), fmt.Appendf(nil, `{"after":%d}`, i))
	}
	for _, c := range clients {
		for i := range 5 {
			if got, want := c.Next(t), fmt.Sprintf(`{"after":%d}`, i); string(got) != want {
				t.Fatalf("got %s after the restart, want %s", got, want)
			}
		}
		c.ExpectQuiet(t)
	}
	if st := s.Stats(t).Hub; st.Clients != 2 || st.Accepted != 2 {
		t.Errorf("stats: %d clients, %d accepted; want the same 2 throughout", st.Clients, st.Accepted)
	}
	if n := len(s.Log.Lines("kafka broker unreachable")); n != 1 {
		t.Errorf("%d unreachable warnings, want 1", n)
	}
	if n := len(s.Log.Lines("kafka broker reachable again")); n != 1 {
		t.Errorf("%d reachable-again lines, want 1", n)
	}
}

// TestNothingMissedAfterReady: a record produced once the service reports
// ready is delivered, however the consumer's start-up interleaves with it.
// Finding where "the end of the topic" is takes several ListOffsets
// requests (end offsets, offsets by time); the broker holds the n-th of them
// here while the test checks that the service is either not ready yet or
// delivers a record produced then.
func TestNothingMissedAfterReady(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  e2etest.Env
		hold int // which ListOffsets request for the topic to hold, from 1
	}{
		{name: "first listing", hold: 1},
		{name: "second listing", hold: 2},
		{name: "third listing", hold: 3},
		{name: "group, first listing", env: e2etest.Env{"Quix__Consumer_Group": "g"}, hold: 1},
		{name: "group, second listing", env: e2etest.Env{"Quix__Consumer_Group": "g"}, hold: 2},
		{name: "group, third listing", env: e2etest.Env{"Quix__Consumer_Group": "g"}, hold: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := e2etest.StartBroker(t, "t", 2)
			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			n := 0 // listings seen; used by the control function only
			c := b.Cluster()
			c.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
				for _, tp := range req.(*kmsg.ListOffsetsRequest).Topics {
					if tp.Topic != "t" {
						continue
					}
					if n++; n == tt.hold {
						once.Do(func() {
							close(held)
							c.SleepControl(func() { <-release })
						})
					}
					break
				}
				return nil, nil, false
			})
			s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(tt.env))
			cl := e2etest.Connect(t, s.URL("/ws"))
			p := e2etest.NewProducer(t, b)
			t.Cleanup(func() {
				select {
				case <-release:
				default:
					close(release)
				}
			})

			select {
			case <-held:
			case <-s.Done():
				t.Fatal("service stopped")
			case <-time.After(e2etest.Wait):
				// Fewer listings than tt.hold: nothing to hold.
			}
			if s.Svc.Ready() {
				p.Produce([]byte("k1"), []byte(`{"while":"listing"}`))
				close(release)
				if got := cl.Next(t); string(got) != `{"while":"listing"}` {
					t.Fatalf("got %s", got)
				}
			} else {
				close(release)
			}
			s.WaitReady(t)
			p.Produce([]byte("k1"), []byte(`{"after":"ready"}`))
			if got := cl.Next(t); string(got) != `{"after":"ready"}` {
				t.Fatalf("got %s", got)
			}
		})
	}
}
