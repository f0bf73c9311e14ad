package view

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// encodeRec encodes rec as the publisher does, with every shape and a
// cursor.
func encodeRec(t testing.TB, rec *wsdest.Record) []*message.Message {
	t.Helper()
	var want [message.NumShapes]bool
	for i := range want {
		want[i] = true
	}
	pos := wsdest.Cursor{Topic: wsdest.NewTopicIdentity("t", [16]byte{1})}
	return encode.New(encode.Options{}).EncodeAt(nil, rec, want, &pos)
}

func rec(key, value string, headers ...string) *wsdest.Record {
	r := &wsdest.Record{Topic: "t", Partition: 1, Offset: 7, Timestamp: time.UnixMilli(1700000000000), Value: []byte(value)}
	if key != "" {
		r.Key = []byte(key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, wsdest.Header{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return r
}

func newRegistry(t testing.TB, cfg Config) *Registry {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func payload(t testing.TB, m *message.Message, s message.Shape) string {
	t.Helper()
	p, ok := wsframe.TextPayload(m.Frames[s])
	if !ok {
		t.Fatalf("no %s frame", s)
	}
	return string(p)
}

func TestWhere(t *testing.T) {
	const telemetry = `{"temperature":31.5,"Tags":{"location":"lab"},"n":3,"s":"abc"}`
	tests := []struct {
		name, where string
		rec         *wsdest.Record
		want        bool
	}{
		{"number over", "value.temperature > 30", rec("sensor-1", telemetry), true},
		{"number under", "value.temperature > 40", rec("sensor-1", telemetry), false},
		{"int equals double", "value.n == 3", rec("sensor-1", telemetry), true},
		{"nested with has", `has(value.Tags) && value.Tags.location == "lab"`, rec("k", telemetry), true},
		{"nested missing with has", `has(value.Other) && value.Other.location == "lab"`, rec("k", telemetry), false},
		{"header", `headers["source"] == "plc-7"`, rec("k", telemetry, "source", "plc-7"), true},
		{"header other", `headers["source"] == "plc-7"`, rec("k", telemetry, "source", "plc-8"), false},
		{"header repeated: last wins", `headers["source"] == "plc-7"`, rec("k", telemetry, "source", "plc-8", "source", "plc-7"), true},
		{"header absent", `"source" in headers`, rec("k", telemetry), false},
		{"key prefix", `key.startsWith("sensor-")`, rec("sensor-1", telemetry), true},
		{"key prefix no", `key.startsWith("sensor-")`, rec("actuator-1", telemetry), false},
		{"null key is empty", `key == ""`, rec("", telemetry), true},
		{"partition offset", "partition == 1 && offset == 7", rec("k", telemetry), true},
		{"timestamp", `timestamp == timestamp("2023-11-14T22:13:20Z")`, rec("k", telemetry), true},
		{"not JSON: value absent", "value.temperature > 30", rec("k", "not json"), false},
		{"not JSON: negated still false", "!(value.temperature > 30)", rec("k", "not json"), false},
		{"not JSON: key still read", `key == "k"`, rec("k", "not json"), true},
		{"not JSON: headers still read", `headers["a"] == "b"`, rec("k", "not json", "a", "b"), true},
		{"missing field is an error: false", "value.nope > 1", rec("k", telemetry), false},
		{"matches", `value.s.matches("^a.c$")`, rec("k", telemetry), true},
		{"value not an object", "value == 5", rec("k", "5"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t, Config{})
			v, err := r.Acquire(tt.where, "", message.ShapePlain, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range encodeRec(t, tt.rec) {
				got := v.Apply(m)
				if (got != nil) != tt.want {
					t.Fatalf("Apply = %v, want delivered %v", got, tt.want)
				}
				if got != nil && got != m {
					t.Fatal("a filter alone made a new message")
				}
			}
		})
	}
}

func TestEvalErrorsCounted(t *testing.T) {
	r := newRegistry(t, Config{})
	v, _ := r.Acquire("value.nope > 1", "", message.ShapePlain, "")
	m := encodeRec(t, rec("k", `{"a":1}`))[0]
	v.Apply(m)
	if s := r.Stats(); s.EvalErrors != 1 {
		t.Fatalf("EvalErrors = %d, want 1", s.EvalErrors)
	}
	// A value that is not JSON is no error.
	v.Apply(encodeRec(t, rec("k", "text"))[0])
	if s := r.Stats(); s.EvalErrors != 1 {
		t.Fatalf("EvalErrors = %d after a non-JSON value, want 1", s.EvalErrors)
	}
}

func TestAcquireErrors(t *testing.T) {
	tests := []struct {
		name, where, fields string
		want                string // in the error
	}{
		{"syntax", "value.a >", "", "1:10"},
		{"syntax 2", "value.a > 1 &&& true", "", "1:"},
		{"undeclared", "temp > 1", "", "undeclared reference to 'temp'"},
		{"not bool", "value.a + 1", "", ""},
		{"type", `key > 1`, "", "1:5"},
		{"too long", strings.Repeat("a", MaxExprLen+1), "", "over the limit of 1024"},
		{"deep nesting", strings.Repeat("(", 100) + "true" + strings.Repeat(")", 100), "", "1:"},
		{"empty field", "", "a,,b", "path 2"},
		{"empty member", "", "a.", "empty member"},
		{"too many fields", "", strings.Repeat("a,", MaxFields) + "a", "over the limit of 64"},
		{"too deep path", "", strings.Repeat("a.", MaxPathDepth) + "a", "over the limit of 16"},
		{"fields too long", "", strings.Repeat("a", MaxFieldsLen+1), "over the limit of 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t, Config{})
			_, err := r.Acquire(tt.where, tt.fields, message.ShapePlain, "")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want it on one line, with %q", err, tt.want)
			}
			if s := r.Stats(); s.Alive != 0 {
				t.Fatalf("%d views alive after a refusal", s.Alive)
			}
		})
	}
}

func TestMaxViews(t *testing.T) {
	r := newRegistry(t, Config{MaxViews: 2})
	a, err := r.Acquire("value.a > 1", "", message.ShapePlain, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Acquire("", "a", message.ShapePlain, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Acquire("value.a > 2", "", message.ShapePlain, ""); err == nil || !strings.Contains(err.Error(), "MAX_VIEWS=2") {
		t.Fatalf("third view: %v, want the MAX_VIEWS refusal", err)
	}
	// The same view again is no new one.
	a2, err := r.Acquire("value.a > 1", "", message.ShapePlain, "")
	if err != nil || a2 != a {
		t.Fatalf("same view again: %v, %v", a2, err)
	}
	// Another shape is another view.
	if _, err := r.Acquire("value.a > 1", "", message.ShapeEnvelope, ""); err == nil {
		t.Fatal("another shape of a view over MAX_VIEWS accepted")
	}
	r.Release(a, "")
	if s := r.Stats(); s.Alive != 2 || s.Refused != 2 {
		t.Fatalf("stats %+v, want 2 alive (a has a user left), 2 refused", s)
	}
	r.Release(a2, "")
	if _, err := r.Acquire("value.a > 2", "", message.ShapePlain, ""); err != nil {
		t.Fatalf("after a view was released: %v", err)
	}
	r.Release(b, "")
}

func TestCompiledOnce(t *testing.T) {
	r := newRegistry(t, Config{})
	a, _ := r.Acquire("value.a > 1", "", message.ShapePlain, "")
	b, _ := r.Acquire("value.a > 1", "x", message.ShapeEnvelope, "")
	if a == b || a.filter != b.filter {
		t.Fatal("two views of one expression compiled it twice")
	}
	// And evaluated it once per record.
	m := encodeRec(t, rec("k", `{"a":2,"x":1}`))[0]
	if a.Apply(m) == nil || b.Apply(m) == nil {
		t.Fatal("dropped")
	}
	if n := r.evals.Load(); n != 1 {
		t.Fatalf("the filter was evaluated %d times for one record, want 1", n)
	}
}

func TestProjection(t *testing.T) {
	tests := []struct {
		name, fields, value, want string
	}{
		{"top", "a,c", `{"a":1,"b":2,"c":3}`, `{"a":1,"c":3}`},
		{"record order", "c,a", `{"a":1,"b":2,"c":3}`, `{"a":1,"c":3}`},
		{"nested", "b.c", `{"a":1,"b":{"c":2,"d":3}}`, `{"b":{"c":2}}`},
		{"nested two", "b.c,b.d.e", `{"b":{"c":2,"d":{"e":1,"f":2},"g":1}}`, `{"b":{"c":2,"d":{"e":1}}}`},
		{"prefix keeps whole", "b,b.c", `{"b":{"c":2,"d":3}}`, `{"b":{"c":2,"d":3}}`},
		{"missing left out", "a,z", `{"a":1}`, `{"a":1}`},
		{"none present", "z", `{"a":1}`, `{}`},
		{"nested missing: member left out", "b.z", `{"a":1,"b":{"c":2}}`, `{}`},
		{"path into non-object", "a.b", `{"a":5}`, `{}`},
		{"whole non-object kept", "a", `{"a":[1,{"x":2}]}`, `{"a":[1,{"x":2}]}`},
		{"escaped key", "a\"b", `{"a\"b":1,"c":2}`, `{"a\"b":1}`},
		{"escaped key by unicode", "é", `{"\u00e9":1,"c":2}`, `{"\u00e9":1}`},
		{"whitespace", "a", "{ \"a\" : 1 , \"b\" : 2 }", `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseFields(tt.fields)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(p.apply([]byte(tt.value))); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestProjectionNotObject(t *testing.T) {
	r := newRegistry(t, Config{})
	v, _ := r.Acquire("", "a", message.ShapePlain, "")
	for _, value := range []string{`[1,2]`, `5`, `"s"`, `not json`} {
		m := encodeRec(t, rec("k", value))[0]
		if got := v.Apply(m); got != m {
			t.Errorf("%s: projected, want delivered as it is", value)
		}
	}
}

func TestProjectionShapes(t *testing.T) {
	r := newRegistry(t, Config{})
	m := encodeRec(t, rec("k", `{"a":1,"b":{"c":2,"d":3}}`, "h", "v"))[0]
	cursor := m.Cursor()
	for _, shape := range []message.Shape{message.ShapePlain, message.ShapeEnvelope, message.ShapeSSEPlain, message.ShapeSSEEnvelope} {
		v, err := r.Acquire("", "b.d", shape, "")
		if err != nil {
			t.Fatal(err)
		}
		d := v.Apply(m)
		if d == m || d.Origin != m.Origin || d.Partition != m.Partition || d.Offset != m.Offset || string(d.Key) != "k" {
			t.Fatalf("%s: derived message does not share the record's fields", shape)
		}
		const want = `{"b":{"d":3}}`
		env := `{"topic":"t","partition":1,"offset":7,"timestamp":1700000000000,"key":"k","headers":{"h":"v"},"value":` + want + `,"cursor":"` + cursor + `"}`
		switch shape {
		case message.ShapePlain:
			if got := payload(t, d, shape); got != want {
				t.Fatalf("plain %s", got)
			}
		case message.ShapeEnvelope:
			if got := payload(t, d, shape); got != env {
				t.Fatalf("envelope %s\nwant %s", got, env)
			}
		case message.ShapeSSEPlain:
			if got := string(d.Frames[shape]); got != "id: "+cursor+"\ndata: "+want+"\n\n" {
				t.Fatalf("sse %q", got)
			}
		case message.ShapeSSEEnvelope:
			if got := string(d.Frames[shape]); got != "id: "+cursor+"\ndata: "+env+"\n\n" {
				t.Fatalf("sse envelope %q", got)
			}
		}
	}
}

// TestProjectionBuiltOnce: views of one field list in two shapes share
// the projection, and build the projected value once per record.
func TestProjectionBuiltOnce(t *testing.T) {
	r := newRegistry(t, Config{})
	m := encodeRec(t, rec("k", `{"a":1,"b":2}`))[0]
	a, _ := r.Acquire("", "a", message.ShapePlain, "")
	b, _ := r.Acquire("", "a", message.ShapeEnvelope, "")
	if a == b || a.proj != b.proj {
		t.Fatal("two views of one field list parsed it twice")
	}
	a.Apply(m)
	b.Apply(m)
	if n := r.projected.Load(); n != 1 {
		t.Fatalf("%d projections of the record built, want 1", n)
	}
}

// TestDecodedOnce: every filter reads one decoding of a record.
func TestDecodedOnce(t *testing.T) {
	r := newRegistry(t, Config{})
	m := encodeRec(t, rec("k", `{"a":1}`))[0]
	a, _ := r.Acquire("value.a == 1", "", message.ShapePlain, "")
	b, _ := r.Acquire("value.a > 0", "", message.ShapePlain, "")
	if a.Apply(m) == nil || b.Apply(m) == nil {
		t.Fatal("filters dropped the record")
	}
	rec := r.records.get(m)
	first := rec.value()
	a.Apply(m)
	if rec.value() != first || r.records.get(m) != rec {
		t.Fatal("the record was decoded again")
	}
}

// TestRecordsBounded: the shared records keep at most their count and
// their bytes of messages, the oldest forgotten first.
func TestRecordsBounded(t *testing.T) {
	rs := newRecords(4, 1000)
	var ms []*message.Message
	for i := range 6 {
		m := encodeRec(t, rec("k", fmt.Sprintf(`{"i":%d}`, i)))[0]
		ms = append(ms, m)
		rs.get(m)
	}
	if rs.n != 4 || rs.byM[ms[1]] != nil || rs.byM[ms[2]] == nil || rs.byM[ms[5]] == nil {
		t.Fatalf("%d kept, want the 4 newest", rs.n)
	}
	big := encodeRec(t, rec("k", `{"s":"`+strings.Repeat("x", 700)+`"}`))[0]
	rs.get(big)
	if rs.bytes > 1000 || rs.byM[big] == nil || rs.byM[ms[2]] != nil || rs.n >= 4 {
		t.Fatalf("%d bytes in %d records kept, want the big one and the newest others within 1000", rs.bytes, rs.n)
	}
	huge := encodeRec(t, rec("k", `{"s":"`+strings.Repeat("x", 2000)+`"}`))[0]
	first := rs.get(huge)
	if rs.get(huge) != first || rs.n != 1 {
		t.Fatal("a record over the bound alone is not kept while it is read")
	}
}

// A client asking for a live view in a spelling seen before is given it
// without a parse: a handshake leaves no parser garbage behind.
func TestKnownSpellingNotParsed(t *testing.T) {
	r := newRegistry(t, Config{})
	const where = `has(value.Tags) && value.Tags.location == "lab" && value.temperature > 30`
	held, err := r.Acquire(where, "temperature,Tags.location", message.ShapeEnvelope, "a")
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		v, err := r.Acquire(where, "temperature,Tags.location", message.ShapeEnvelope, "b")
		if err != nil || v != held {
			t.Fatalf("got %p, %v; want the live view", v, err)
		}
		r.Release(v, "b")
	})
	if allocs > 8 {
		t.Fatalf("acquiring a live view in a known spelling allocated %.0f times; a parse allocates hundreds", allocs)
	}
}
