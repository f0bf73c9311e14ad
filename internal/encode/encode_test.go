package encode

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/quix"
)

var (
	both         = [message.NumShapes]bool{true, true}
	plainOnly    = [message.NumShapes]bool{message.ShapePlain: true}
	envelopeOnly = [message.NumShapes]bool{message.ShapeEnvelope: true}
	ts           = time.UnixMilli(1700000000123)
)

// payload checks that f is one unmasked, final text frame and returns its
// payload.
func payload(t *testing.T, f []byte) []byte {
	t.Helper()
	if len(f) < 2 || f[0] != 0x81 || f[1]&0x80 != 0 {
		t.Fatalf("bad frame header % x", f[:min(len(f), 2)])
	}
	n, off := int(f[1]), 2
	switch n {
	case 126:
		n, off = int(binary.BigEndian.Uint16(f[2:])), 4
		if n < 126 {
			t.Fatalf("non-minimal 16-bit length %d", n)
		}
	case 127:
		n, off = int(binary.BigEndian.Uint64(f[2:])), 10
		if n <= 0xFFFF {
			t.Fatalf("non-minimal 64-bit length %d", n)
		}
	}
	if len(f) != off+n {
		t.Fatalf("frame is %d bytes, header says %d+%d", len(f), off, n)
	}
	return f[off:]
}

// envelope is the decoded envelope; numbers kept exact.
type envelope struct {
	Topic     string                     `json:"topic"`
	Partition json.Number                `json:"partition"`
	Offset    json.Number                `json:"offset"`
	Timestamp json.Number                `json:"timestamp"`
	Key       json.RawMessage            `json:"key"`
	Headers   map[string]json.RawMessage `json:"headers"`
	Value     json.RawMessage            `json:"value"`
}

func decodeEnvelope(t *testing.T, p []byte) envelope {
	t.Helper()
	if !json.Valid(p) {
		t.Fatalf("envelope is not valid JSON: %s", p)
	}
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	d.DisallowUnknownFields()
	var e envelope
	if err := d.Decode(&e); err != nil {
		t.Fatalf("decode envelope %s: %v", p, err)
	}
	return e
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func quixHeaders(model, codec string) []wsdest.Header {
	return []wsdest.Header{{Key: quix.HeaderModelKey, Value: []byte(model)}, {Key: quix.HeaderCodecID, Value: []byte(codec)}}
}

const tsPayload = `{"Timestamps":[1,2],"NumericValues":{"a":[1,2.0]},"TagValues":{"t":["x","y"]}}`

var tsRows = []string{`{"a":1,"Tags":{"t":"x"},"Timestamp":1}`, `{"a":2.0,"Tags":{"t":"y"},"Timestamp":2}`}

const docLegacy = `{"C":"JT","K":"ParameterData","V":{"BinaryValues":{},"StringValues":{"c":["string"]},"NumericValues":{"a":[1],"b":[1.1]},"Timestamps":[123123123],"TagValues":{"tag1":["tag"]}},"S":34,"E":183}`

func TestEncode(t *testing.T) {
	type want struct {
		plain []string // plain payload per message; "" means no plain frame
		value []string // envelope value per message (raw JSON)
		skip  SkipReason
	}
	tests := []struct {
		name    string
		format  Format
		headers []wsdest.Header
		value   []byte
		want    want
	}{
		{"object passthrough", FormatAuto, nil, []byte(`{"b": 1, "a":[1.0, 2e3]}`),
			want{plain: []string{`{"b": 1, "a":[1.0, 2e3]}`}, value: []string{`{"b": 1, "a":[1.0, 2e3]}`}}},
		{"array with whitespace", FormatAuto, nil, []byte(" [1,2]\n"),
			want{plain: []string{" [1,2]\n"}, value: []string{" [1,2]\n"}}},
		{"number", FormatAuto, nil, []byte(`12345678901234567890`),
			want{plain: []string{`12345678901234567890`}, value: []string{`12345678901234567890`}}},
		{"string", FormatRaw, nil, []byte(`"h\u00e9"`),
			want{plain: []string{`"h\u00e9"`}, value: []string{`"h\u00e9"`}}},
		{"JSON null literal", FormatAuto, nil, []byte(`null`),
			want{plain: []string{`null`}, value: []string{`null`}}},
		{"text that is not JSON", FormatAuto, nil, []byte("hello \"world\"\n\x01"),
			want{plain: []string{""}, value: []string{`"hello \"world\"\n\u0001"`}, skip: SkipNotJSON}},
		{"binary", FormatRaw, nil, []byte{0xff, 0x00, 0x10},
			want{plain: []string{""}, value: []string{`{"base64":"/wAQ"}`}, skip: SkipNotUTF8}},
		{"JSON string holding invalid UTF-8", FormatAuto, nil, []byte("\"\xff\""),
			want{plain: []string{""}, value: []string{`{"base64":"Iv8i"}`}, skip: SkipNotUTF8}},
		{"empty value", FormatAuto, nil, []byte{},
			want{plain: []string{""}, value: []string{`""`}, skip: SkipEmpty}},
		{"tombstone", FormatAuto, nil, nil,
			want{plain: []string{""}, value: []string{`null`}, skip: SkipTombstone}},

		{"Quix headers, auto", FormatAuto, quixHeaders("TimeseriesData", "JT"), []byte(tsPayload),
			want{plain: tsRows, value: tsRows}},
		{"Quix headers gzip, auto", FormatAuto, quixHeaders("TimeseriesData", "[GZIP]JT"), gz(tsPayload),
			want{plain: tsRows, value: tsRows}},
		{"Quix legacy, auto", FormatAuto, nil, []byte(docLegacy),
			want{
				plain: []string{`{"a":1,"b":1.1,"c":"string","Tags":{"tag1":"tag"},"Timestamp":123123123}`},
				value: []string{`{"a":1,"b":1.1,"c":"string","Tags":{"tag1":"tag"},"Timestamp":123123123}`},
			}},
		{"Quix EventData[], auto", FormatAuto, quixHeaders("EventData[]", "J"), []byte(`[{"Timestamp":1,"Id":"a","Value":"x"},{"Timestamp":2,"Id":"b","Value":"y"}]`),
			want{
				plain: []string{`{"Timestamp":1,"Id":"a","Value":"x","Tags":{}}`, `{"Timestamp":2,"Id":"b","Value":"y","Tags":{}}`},
				value: []string{`{"Timestamp":1,"Id":"a","Value":"x","Tags":{}}`, `{"Timestamp":2,"Id":"b","Value":"y","Tags":{}}`},
			}},
		{"Quix with no rows, auto", FormatAuto, quixHeaders("EventData[]", "J"), []byte(`[]`), want{}},
		{"JSON that merely looks like a legacy envelope, auto", FormatAuto, nil, []byte(`{"C":"x","K":1,"V":2}`),
			want{plain: []string{`{"C":"x","K":1,"V":2}`}, value: []string{`{"C":"x","K":1,"V":2}`}}},
		{"Quix headers, raw", FormatRaw, quixHeaders("TimeseriesData", "JT"), []byte(tsPayload),
			want{plain: []string{tsPayload}, value: []string{tsPayload}}},
		{"Quix legacy, raw", FormatRaw, nil, []byte(docLegacy),
			want{plain: []string{docLegacy}, value: []string{docLegacy}}},
		{"Quix gzip, raw", FormatRaw, quixHeaders("TimeseriesData", "[GZIP]JT"), gz(`{}`),
			want{plain: []string{""}, value: []string{`{"base64":"` + base64.StdEncoding.EncodeToString(gz(`{}`)) + `"}`}, skip: SkipNotUTF8}},
		{"Quix protocol, auto", FormatAuto, quixHeaders("StreamEnd", "JT"), []byte(`{}`), want{skip: SkipQuixProtocol}},
		{"Quix protocol, raw", FormatRaw, quixHeaders("StreamEnd", "JT"), []byte(`{}`),
			want{plain: []string{`{}`}, value: []string{`{}`}}},
		{"Quix unsupported, auto", FormatAuto, quixHeaders("TimeseriesData", "PB"), []byte{1}, want{skip: SkipQuixUnsupported}},
		{"Quix malformed, auto", FormatAuto, quixHeaders("TimeseriesData", "JT"), []byte(`{"Timestamps":[1]`), want{skip: SkipQuixMalformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &wsdest.Record{Topic: "t", Partition: 3, Offset: 1 << 60, Timestamp: ts, Key: []byte("k"), Headers: tt.headers, Value: tt.value}
			e := New(Options{Format: tt.format})
			dst := []*message.Message{{Offset: -1}}
			got := e.Encode(dst, rec, both)
			if got[0].Offset != -1 {
				t.Fatal("Encode changed what was already in dst")
			}
			msgs := got[1:]
			if len(msgs) != len(tt.want.value) {
				t.Fatalf("%d messages, want %d", len(msgs), len(tt.want.value))
			}
			for i, m := range msgs {
				if !bytes.Equal(m.Key, rec.Key) || m.Partition != 3 || m.Offset != 1<<60 {
					t.Errorf("message %d: key=%q partition=%d offset=%d", i, m.Key, m.Partition, m.Offset)
				}
				if tt.want.plain[i] == "" {
					if m.Frames[message.ShapePlain] != nil {
						t.Errorf("message %d: unexpected plain frame %q", i, m.Frames[message.ShapePlain])
					}
				} else if p := payload(t, m.Frames[message.ShapePlain]); string(p) != tt.want.plain[i] {
					t.Errorf("message %d: plain %q, want %q", i, p, tt.want.plain[i])
				}
				env := decodeEnvelope(t, payload(t, m.Frames[message.ShapeEnvelope]))
				// json.RawMessage drops the whitespace around a value.
				if string(env.Value) != strings.TrimSpace(tt.want.value[i]) {
					t.Errorf("message %d: envelope value %s, want %s", i, env.Value, tt.want.value[i])
				}
				if env.Topic != "t" || env.Partition != "3" || env.Offset != "1152921504606846976" ||
					env.Timestamp != "1700000000123" || string(env.Key) != `"k"` {
					t.Errorf("message %d: envelope %+v", i, env)
				}
			}
			st := e.Stats()
			if st.Records != 1 || st.Messages != uint64(len(msgs)) {
				t.Errorf("stats records=%d messages=%d", st.Records, st.Messages)
			}
			for _, r := range skipReasons {
				n, ok := st.Skipped[r]
				if !ok {
					t.Errorf("reason %s missing from stats", r)
				}
				if wantN := map[bool]uint64{true: 1}[r == tt.want.skip]; n != wantN {
					t.Errorf("skipped[%s] = %d, want %d", r, n, wantN)
				}
			}
		})
	}
}

func TestEncodeEnvelopeKeyAndHeaders(t *testing.T) {
	tests := []struct {
		name    string
		key     []byte
		headers []wsdest.Header
		topic   string
		wantKey string
		wantHdr map[string]string
		order   string // expected raw headers object
	}{
		{name: "nil key, no headers", key: nil, topic: "t", wantKey: `null`, order: `{}`},
		{name: "empty key", key: []byte{}, topic: "t", wantKey: `""`, order: `{}`},
		{name: "key needing escapes", key: []byte("a\"b\\c\td\x7f"), topic: "t", wantKey: `"a\"b\\c\td` + "\x7f" + `"`, order: `{}`},
		{name: "non-UTF-8 key", key: []byte{0xc3, 0x28}, topic: "t", wantKey: `{"base64":"wyg="}`, order: `{}`},
		{
			name: "headers", key: []byte("k"), topic: "t",
			headers: []wsdest.Header{
				{Key: "a", Value: []byte("1")},
				{Key: "bin", Value: []byte{0xff}},
				{Key: "nil", Value: nil},
				{Key: "a", Value: []byte("2")},
				{Key: "\xffx", Value: []byte("é")},
			},
			wantKey: `"k"`,
			order:   `{"bin":{"base64":"/w=="},"nil":null,"a":"2","` + "\uFFFDx" + `":"é"}`,
		},
		{name: "topic needing escapes", key: []byte("k"), topic: "a\"\n\xff", wantKey: `"k"`, order: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(Options{})
			rec := &wsdest.Record{Topic: tt.topic, Offset: 7, Timestamp: ts, Key: tt.key, Headers: tt.headers, Value: []byte(`{}`)}
			msgs := e.Encode(nil, rec, envelopeOnly)
			if len(msgs) != 1 || msgs[0].Frames[message.ShapePlain] != nil {
				t.Fatalf("got %d messages / plain frame built", len(msgs))
			}
			p := payload(t, msgs[0].Frames[message.ShapeEnvelope])
			env := decodeEnvelope(t, p)
			if string(env.Key) != tt.wantKey {
				t.Errorf("key %s, want %s", env.Key, tt.wantKey)
			}
			if !bytes.Contains(p, []byte(`"headers":`+tt.order+`,"value":{}}`)) {
				t.Errorf("headers not as expected in %s", p)
			}
			if want := strings.ToValidUTF8(tt.topic, "\uFFFD"); env.Topic != want {
				t.Errorf("topic %q, want %q", env.Topic, want)
			}
		})
	}
}

func TestEncodeWant(t *testing.T) {
	rec := &wsdest.Record{Topic: "t", Value: []byte(tsPayload), Headers: quixHeaders("TimeseriesData", "JT")}
	for _, w := range [][message.NumShapes]bool{{}, plainOnly, envelopeOnly, both} {
		for _, f := range []Format{FormatAuto, FormatRaw} {
			msgs := New(Options{Format: f}).Encode(nil, rec, w)
			wantN := map[Format]int{FormatAuto: 2, FormatRaw: 1}[f]
			if len(msgs) != wantN {
				t.Fatalf("%v %v: %d messages", f, w, len(msgs))
			}
			for _, m := range msgs {
				for s := range message.NumShapes {
					if (m.Frames[s] != nil) != w[s] {
						t.Errorf("%v want=%v: frame %v built=%v", f, w, s, m.Frames[s] != nil)
					}
				}
			}
		}
	}
}

// TestEncodeFrameSizes checks the three header lengths.
func TestEncodeFrameSizes(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 200000} {
		v := []byte(`"` + strings.Repeat("x", n) + `"`)
		msgs := New(Options{}).Encode(nil, &wsdest.Record{Value: v}, both)
		if p := payload(t, msgs[0].Frames[message.ShapePlain]); !bytes.Equal(p, v) {
			t.Errorf("%d: plain payload differs", n)
		}
		if f := msgs[0].Frames[message.ShapePlain]; cap(f) != len(f) {
			t.Errorf("%d: frame cap %d, len %d", n, cap(f), len(f))
		}
		env := decodeEnvelope(t, payload(t, msgs[0].Frames[message.ShapeEnvelope]))
		if !bytes.Equal(env.Value, v) {
			t.Errorf("%d: envelope value differs", n)
		}
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		err  bool
	}{
		{"", FormatAuto, false},
		{"auto", FormatAuto, false},
		{" RAW ", FormatRaw, false},
		{"quix", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ParseFormat(%q) = %v, %v", tt.in, got, err)
		}
	}
	if FormatAuto.String() != "auto" || FormatRaw.String() != "raw" || Format(9).String() != "unknown" {
		t.Error("Format.String")
	}
}

// logRecorder is a slog.Handler that keeps the records it gets.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

func (h *logRecorder) lines() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.recs {
		m := map[string]string{"msg": r.Message, "level": r.Level.String()}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.String()
			return true
		})
		out = append(out, m)
	}
	return out
}

func TestSkipWarningsAreRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &logRecorder{}
		e := New(Options{Logger: slog.New(h)})
		secret := "SECRET-VALUE-BYTES"
		enc := func(off int64, value []byte, headers []wsdest.Header) {
			e.Encode(nil, &wsdest.Record{Topic: "in", Partition: 2, Offset: off, Value: value, Headers: headers}, both)
		}
		for i := range 5 {
			enc(int64(i), []byte(secret), nil)
		}
		enc(5, []byte(`{"Timestamps":[1]`+secret), quixHeaders("TimeseriesData", "JT"))
		enc(6, []byte(`{}`), quixHeaders("StreamEnd", "JT"))
		time.Sleep(WarnInterval - time.Millisecond)
		enc(10, []byte(secret), nil)
		time.Sleep(time.Millisecond)
		enc(11, []byte(secret), nil)

		lines := h.lines()
		want := []map[string]string{
			{"reason": "not_json", "skipped": "1", "offset": "0"},
			{"reason": "quix_malformed", "skipped": "1", "offset": "5", "model_key": "TimeseriesData", "codec": "JT"},
			{"reason": "not_json", "skipped": "6", "offset": "11"},
		}
		if len(lines) != len(want) {
			t.Fatalf("got %d lines: %v", len(lines), lines)
		}
		for i, w := range want {
			for k, v := range w {
				if lines[i][k] != v {
					t.Errorf("line %d: %s=%q, want %q (%v)", i, k, lines[i][k], v, lines[i])
				}
			}
			if lines[i]["level"] != "WARN" || lines[i]["topic"] != "in" || lines[i]["partition"] != "2" {
				t.Errorf("line %d: %v", i, lines[i])
			}
			for k, v := range lines[i] {
				if strings.Contains(v, "SECRET") {
					t.Errorf("line %d: value bytes leaked in %s=%q", i, k, v)
				}
			}
		}
		if !strings.Contains(lines[1]["error"], "invalid JSON") {
			t.Errorf("malformed line lacks the error: %v", lines[1])
		}
		st := e.Stats()
		if st.Skipped[SkipNotJSON] != 7 || st.Skipped[SkipQuixMalformed] != 1 || st.Skipped[SkipQuixProtocol] != 1 {
			t.Errorf("stats %v", st.Skipped)
		}
	})
}

// TestEncodeConcurrent runs Encode and Stats from several goroutines; it is
// meant for -race.
func TestEncodeConcurrent(t *testing.T) {
	e := New(Options{})
	recs := []*wsdest.Record{
		{Value: []byte(tsPayload), Headers: quixHeaders("TimeseriesData", "JT")},
		{Value: []byte(`{"a":1}`)},
		{Value: []byte("nope")},
		{Value: gz(tsPayload), Headers: quixHeaders("TimeseriesData", "[GZIP]JT")},
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var dst []*message.Message
			for i := range 200 {
				dst = e.Encode(dst[:0], recs[(g+i)%len(recs)], both)
				for _, m := range dst {
					if !json.Valid(payload(t, m.Frames[message.ShapeEnvelope])) {
						t.Error("invalid envelope")
					}
				}
				_ = e.Stats()
			}
		})
	}
	wg.Wait()
	st := e.Stats()
	if st.Records != 800 || st.Messages != 200*2+200+200+200*2 || st.Skipped[SkipNotJSON] != 200 {
		t.Errorf("stats %+v", st)
	}
}

func TestAppendJSONString(t *testing.T) {
	var all []byte
	for c := range 0x80 {
		all = append(all, byte(c))
	}
	all = append(all, "é€😀"...)
	got := appendJSONString(nil, all)
	var back string
	if err := json.Unmarshal(got, &back); err != nil || back != string(all) {
		t.Fatalf("round trip failed: %s %v", got, err)
	}
	if s := string(appendText(nil, "a\xffb")); s != `"a`+"\uFFFD"+`b"` {
		t.Errorf("appendText = %s", s)
	}
}

func ExampleEncoder_Encode() {
	e := New(Options{})
	rec := &wsdest.Record{Topic: "sensors", Offset: 42, Timestamp: time.UnixMilli(1700000000000).UTC(),
		Key: []byte("car-1"), Value: []byte(`{"speed": 88}`)}
	msgs := e.Encode(nil, rec, [message.NumShapes]bool{true, true})
	for _, f := range msgs[0].Frames[:message.ShapeSSEPlain] {
		fmt.Println(string(f[2:]))
	}
	// Output:
	// {"speed": 88}
	// {"topic":"sensors","partition":0,"offset":42,"timestamp":1700000000000,"key":"car-1","headers":{},"value":{"speed": 88}}
}
