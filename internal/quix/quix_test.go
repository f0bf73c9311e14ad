package quix

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wsdest/wsdest"
)

// docLegacy is the legacy example of quix-formats.md, verbatim.
const docLegacy = `{"C":"JT","K":"ParameterData","V":{"BinaryValues":{},"StringValues":{"c":["string"]},"NumericValues":{"a":[1],"b":[1.1]},"Timestamps":[123123123],"TagValues":{"tag1":["tag"]}},"S":34,"E":183}`

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// legacy builds a legacy envelope the way the serializers do, with S and E
// computed.
func legacy(codec, model, v string) []byte {
	start := fmt.Sprintf(`{"C":%q,"K":%q,"V":`, codec, model)
	return fmt.Appendf(nil, `%s%s,"S":%d,"E":%d}`, start, v, len(start), len(start)+len(v))
}

func hdrs(model, codec string) []wsdest.Header {
	return []wsdest.Header{{Key: HeaderModelKey, Value: []byte(model)}, {Key: HeaderCodecID, Value: []byte(codec)}}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

const tsPayload = `{"Timestamps":[1692703362840389000,1692703362840389001],` +
	`"NumericValues":{"speed":[1,2.50],"rpm":[null,12345678901234567890]},` +
	`"StringValues":{"gear":["N","1"]},` +
	`"TagValues":{"car":["A",null]}}`

var tsRows = []string{
	`{"speed":1,"rpm":null,"gear":"N","Tags":{"car":"A"},"Timestamp":1692703362840389000}`,
	`{"speed":2.50,"rpm":12345678901234567890,"gear":"1","Tags":{"car":null},"Timestamp":1692703362840389001}`,
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		headers []wsdest.Header
		value   []byte
		kind    Kind
		model   string
		codec   string
		reason  string
		rows    []string
	}{
		{
			name:  "plain JSON",
			value: []byte(`{"a":1}`),
			kind:  KindNotQuix,
		},
		{
			name:    "plain JSON with unrelated headers",
			headers: []wsdest.Header{{Key: "content-type", Value: []byte("json")}},
			value:   []byte(`[1,2]`),
			kind:    KindNotQuix,
		},
		{
			name:  "legacy example from the docs",
			value: []byte(docLegacy),
			kind:  KindRows, model: "ParameterData", codec: "JT",
			rows: []string{`{"a":1,"b":1.1,"c":"string","Tags":{"tag1":"tag"},"Timestamp":123123123}`},
		},
		{
			name:  "legacy built with computed offsets",
			value: legacy("JT", "ParameterData", tsPayload),
			kind:  KindRows, model: "ParameterData", codec: "JT",
			rows: tsRows,
		},
		{
			name:    "headers TimeseriesData JT",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(tsPayload),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
			rows: tsRows,
		},
		{
			name:    "headers ParameterData J with whitespace",
			headers: hdrs("ParameterData", "J"),
			value:   []byte(" {\n \"Timestamps\" : [ 5 ] ,\t\"NumericValues\" : { \"x\" : [ -0.5e3 ] } }\n"),
			kind:    KindRows, model: "ParameterData", codec: "J",
			rows: []string{`{"x":-0.5e3,"Tags":{},"Timestamp":5}`},
		},
		{
			name:    "headers gzip",
			headers: hdrs("TimeseriesData", "[GZIP]JT"),
			value:   gz(tsPayload),
			kind:    KindRows, model: "TimeseriesData", codec: "[GZIP]JT",
			rows: tsRows,
		},
		{
			name:  "legacy gzip, V is base64 of gzip",
			value: legacy("[GZIP]JT", "ParameterData", `"`+b64(gz(tsPayload))+`"`),
			kind:  KindRows, model: "ParameterData", codec: "[GZIP]JT",
			rows: tsRows,
		},
		{
			name:  "legacy V as base64 string without gzip",
			value: legacy("JT", "ParameterData", `"`+b64([]byte(tsPayload+"\n"))+`"`),
			kind:  KindRows, model: "ParameterData", codec: "JT",
			rows: tsRows,
		},
		{
			name:  "legacy with extra keys and a different key order",
			value: []byte(`{"C":"J","M":{"x":1},"V":{"Timestamps":[1],"NumericValues":{"a":[2]}},"K":"ParameterData"}`),
			kind:  KindRows, model: "ParameterData", codec: "J",
			rows: []string{`{"a":2,"Tags":{},"Timestamp":1}`},
		},
		{
			name:    "legacy wins over headers",
			headers: hdrs("EventData", "PB"),
			value:   []byte(docLegacy),
			kind:    KindRows, model: "ParameterData", codec: "JT",
			rows: []string{`{"a":1,"b":1.1,"c":"string","Tags":{"tag1":"tag"},"Timestamp":123123123}`},
		},
		{
			name:    "section order is numeric, string, binary whatever the JSON order",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(`{"BinaryValues":{"b":["AQI="]},"TagValues":{"t":["x"]},"StringValues":{"s":["v"]},"Timestamps":[7],"NumericValues":{"n":[0]}}`),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
			rows: []string{`{"n":0,"s":"v","b":"AQI=","Tags":{"t":"x"},"Timestamp":7}`},
		},
		{
			name:    "binary values: canonical base64, escapes, line breaks, null",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(`{"Timestamps":[1,2,3],"BinaryValues":{"d":["Ynl0\u005aXM=","Ynl0\nZXM=",null]}}`),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
			rows: []string{
				`{"d":"Ynl0ZXM=","Tags":{},"Timestamp":1}`,
				`{"d":"Ynl0ZXM=","Tags":{},"Timestamp":2}`,
				`{"d":null,"Tags":{},"Timestamp":3}`,
			},
		},
		{
			name:    "values copied verbatim: strings with escapes and unicode, numbers",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(`{"Timestamps":[1],"NumericValues":{"big":[1e400],"neg":[-0],"f":[1.0]},"StringValues":{"s\"q":["é \"x\" \u00e9 \ud83d\ude00"]}}`),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
			rows: []string{`{"big":1e400,"neg":-0,"f":1.0,"s\"q":"é \"x\" \u00e9 \ud83d\ude00","Tags":{},"Timestamp":1}`},
		},
		{
			name:    "repeated parameter: first position, last values",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(`{"Timestamps":[1],"NumericValues":{"x":[1,2,3],"y":[4]},"StringValues":{"\u0078":["s"]}}`),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
			rows: []string{`{"x":"s","y":4,"Tags":{},"Timestamp":1}`},
		},
		{
			name:    "repeated section: last wins",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(`{"Timestamps":[1],"NumericValues":{"x":[1]},"NumericValues":{"z":[2]}}`),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
			rows: []string{`{"z":2,"Tags":{},"Timestamp":1}`},
		},
		{
			name:    "repeated tag: first position, last values",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(`{"Timestamps":[1],"TagValues":{"a":["1"],"b":["2"],"a":["3"]}}`),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
			rows: []string{`{"Tags":{"a":"3","b":"2"},"Timestamp":1}`},
		},
		{
			name:    "parameter named Tags is replaced by the tags object",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(`{"Timestamps":[1],"NumericValues":{"a":[1],"Tags":[2],"b":[3]},"TagValues":{"t":["v"]}}`),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
			rows: []string{`{"a":1,"Tags":{"t":"v"},"b":3,"Timestamp":1}`},
		},
		{
			name:    "tag named Timestamp is allowed",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(`{"Timestamps":[1],"TagValues":{"Timestamp":["x"]}}`),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
			rows: []string{`{"Tags":{"Timestamp":"x"},"Timestamp":1}`},
		},
		{
			name:    "null sections count as empty, unknown keys ignored",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(`{"Epoch":0,"Timestamps":[1],"NumericValues":null,"StringValues":{"s":["a"]},"BinaryValues":null,"TagValues":null}`),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
			rows: []string{`{"s":"a","Tags":{},"Timestamp":1}`},
		},
		{
			name:    "no timestamps, no rows",
			headers: hdrs("TimeseriesData", "JT"),
			value:   []byte(`{"Timestamps":[],"NumericValues":{"a":[]}}`),
			kind:    KindRows, model: "TimeseriesData", codec: "JT",
		},
		{
			name:    "EventData",
			headers: hdrs("EventData", "JT"),
			value:   []byte(`{"Id":"an_event","Value":"any_string","Tags":{"tag1":"tag"},"Timestamp":1692703362840389000,"Extra":1}`),
			kind:    KindRows, model: "EventData", codec: "JT",
			rows: []string{`{"Timestamp":1692703362840389000,"Id":"an_event","Value":"any_string","Tags":{"tag1":"tag"}}`},
		},
		{
			name:  "EventData legacy without Tags",
			value: legacy("JT", "EventData", `{"Timestamp":1,"Id":"e","Value":""}`),
			kind:  KindRows, model: "EventData", codec: "JT",
			rows: []string{`{"Timestamp":1,"Id":"e","Value":"","Tags":{}}`},
		},
		{
			name:    "EventData[]",
			headers: hdrs("EventData[]", "J"),
			value:   []byte(`[{"Timestamp":1,"Id":"a","Value":"x","Tags":null},{"Timestamp":2,"Id":"b","Value":"y"}]`),
			kind:    KindRows, model: "EventData[]", codec: "J",
			rows: []string{
				`{"Timestamp":1,"Id":"a","Value":"x","Tags":null}`,
				`{"Timestamp":2,"Id":"b","Value":"y","Tags":{}}`,
			},
		},
		{
			name:    "EventData[] empty",
			headers: hdrs("EventData[]", "J"),
			value:   []byte(`[]`),
			kind:    KindRows, model: "EventData[]", codec: "J",
		},
		{
			name:    "EventData[] gzip",
			headers: hdrs("EventData[]", "[GZIP]J"),
			value:   gz(`[{"Timestamp":1,"Id":"a","Value":"x"}]`),
			kind:    KindRows, model: "EventData[]", codec: "[GZIP]J",
			rows: []string{`{"Timestamp":1,"Id":"a","Value":"x","Tags":{}}`},
		},
		{
			name:    "last header wins",
			headers: append(hdrs("StreamEnd", "PB"), hdrs("EventData", "JT")...),
			value:   []byte(`{"Timestamp":1,"Id":"a","Value":"x"}`),
			kind:    KindRows, model: "EventData", codec: "JT",
			rows: []string{`{"Timestamp":1,"Id":"a","Value":"x","Tags":{}}`},
		},

		// Protocol messages.
		{name: "StreamEnd", headers: hdrs("StreamEnd", "JT"), value: nil, kind: KindIgnored, model: "StreamEnd", codec: "JT"},
		{name: "StreamProperties legacy", value: legacy("JT", "StreamProperties", `{"Name":"x"}`), kind: KindIgnored, model: "StreamProperties", codec: "JT"},
		{name: "ParameterDefinitions with PB codec", headers: hdrs("ParameterDefinitions", "PB"), value: []byte{1, 2}, kind: KindIgnored, model: "ParameterDefinitions", codec: "PB"},
		{name: "EventDefinitions", headers: hdrs("EventDefinitions", "[GZIP]JT"), value: []byte("not gzip"), kind: KindIgnored, model: "EventDefinitions", codec: "[GZIP]JT"},

		// Unsupported.
		{name: "protobuf codec", headers: hdrs("TimeseriesData", "PB"), value: []byte{8, 1}, kind: KindUnsupported, model: "TimeseriesData", codec: "PB", reason: ReasonCodec},
		{name: "string codec", headers: hdrs("EventData", "S"), value: []byte("x"), kind: KindUnsupported, model: "EventData", codec: "S", reason: ReasonCodec},
		{name: "bytes codec gzip", headers: hdrs("EventData", "[GZIP]B[]"), value: gz("x"), kind: KindUnsupported, model: "EventData", codec: "[GZIP]B[]", reason: ReasonCodec},
		{name: "null codec legacy", value: legacy("null", "EventData", `null`), kind: KindUnsupported, model: "EventData", codec: "null", reason: ReasonCodec},
		{name: "unknown model key", headers: hdrs("Foo", "JT"), value: []byte(`{}`), kind: KindUnsupported, model: "Foo", codec: "JT", reason: ReasonModelKey},
		{name: "unknown model key legacy", value: legacy("JT", "Foo", `{}`), kind: KindUnsupported, model: "Foo", codec: "JT", reason: ReasonModelKey},
		{name: "missing codec header", headers: hdrs("EventData", "")[:1], value: []byte(`{}`), kind: KindUnsupported, model: "EventData", reason: ReasonMissingCodec},
		{name: "empty model key", headers: hdrs("", "JT"), value: []byte(`{}`), kind: KindUnsupported, codec: "JT", reason: ReasonMissingModelKey},
		{
			name:    "split header",
			headers: append(hdrs("TimeseriesData", "JT"), wsdest.Header{Key: HeaderSplitMessageID, Value: []byte("1")}),
			value:   []byte(tsPayload),
			kind:    KindUnsupported, reason: ReasonSplitMessage,
		},
		{name: "split marker", value: append([]byte("<\x00\x00\x00\x07/\x00/\x02>"), tsPayload[:20]...), kind: KindUnsupported, reason: ReasonSplitMessage},

		// Lookalikes that are not Quix.
		{name: "value starting with < but no split marker", value: []byte("<html>hello</html>"), kind: KindNotQuix},
		{name: "legacy lookalike with a non-Quix codec", value: []byte(`{"C":"x","K":"EventData","V":{}}`), kind: KindNotQuix},
		{name: "legacy lookalike without V", value: []byte(`{"C":"JT","K":"EventData"}`), kind: KindNotQuix},
		{name: "legacy lookalike, invalid JSON", value: []byte(`{"C":"JT","K":"EventData","V":{`), kind: KindNotQuix},
		{name: "legacy lookalike, C not a string", value: []byte(`{"C":1,"K":"EventData","V":{}}`), kind: KindNotQuix},
	}
	var d Decoder
	var res Result
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A reused Decoder and Result must give what fresh ones give,
			// and so must a Result that leaves a gap before each row.
			for _, run := range []string{"fresh", "reused", "gap"} {
				dd, rr := &d, &res
				switch run {
				case "fresh":
					dd, rr = new(Decoder), new(Result)
				case "gap":
					dd, rr = new(Decoder), &Result{Gap: 4}
				}
				if err := dd.Decode(tt.headers, tt.value, rr); err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if rr.Kind != tt.kind || rr.ModelKey != tt.model || rr.Codec != tt.codec || rr.Reason != tt.reason {
					t.Fatalf("got kind=%v model=%q codec=%q reason=%q, want kind=%v model=%q codec=%q reason=%q",
						rr.Kind, rr.ModelKey, rr.Codec, rr.Reason, tt.kind, tt.model, tt.codec, tt.reason)
				}
				if rr.Kind == KindRows && (rr.ModelKey == ModelTimeseriesData || rr.ModelKey == ModelParameterData) {
					// Exact, but for binary values written in another
					// spelling than canonical base64 (longer).
					if n := dd.rowsLen() + rr.Len()*rr.Gap; n != len(rr.buf) && (n < len(rr.buf) || !strings.HasPrefix(tt.name, "binary")) {
						t.Errorf("rowsLen %d, rows written %d", n, len(rr.buf))
					}
				}
				for i := range rr.Len() {
					if p := rr.Prefixed(i); len(p) != len(rr.Row(i))+rr.Gap || &p[len(p)-1] != &rr.Row(i)[len(rr.Row(i))-1] {
						t.Errorf("row %d: prefixed %q is not the row after %d bytes", i, p, rr.Gap)
					}
				}
				var got []string
				for _, r := range rowsOf(rr) {
					if !json.Valid(r) {
						t.Errorf("row is not valid JSON: %s", r)
					}
					got = append(got, string(r))
				}
				if strings.Join(got, "\n") != strings.Join(tt.rows, "\n") {
					t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.rows, "\n"))
				}
			}
		})
	}
}

// TestDetach: rows detached from a Result stay as they were once the
// Result decodes another record.
func TestDetach(t *testing.T) {
	var d Decoder
	res := Result{Gap: 2}
	if err := d.Decode(hdrs("TimeseriesData", "JT"), []byte(tsPayload), &res); err != nil {
		t.Fatal(err)
	}
	kept := rowsOf(&res)
	first := string(kept[0])
	res.Detach()
	if err := d.Decode(hdrs("EventData", "JT"), []byte(`{"Timestamp":1,"Id":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","Value":"y"}`), &res); err != nil {
		t.Fatal(err)
	}
	if string(kept[0]) != first || first != tsRows[0] {
		t.Fatalf("detached row %q, want %q", kept[0], tsRows[0])
	}
}

func TestDecodeMalformed(t *testing.T) {
	ts := func(payload string) ([]wsdest.Header, []byte) { return hdrs("TimeseriesData", "JT"), []byte(payload) }
	ev := func(model, payload string) ([]wsdest.Header, []byte) { return hdrs(model, "JT"), []byte(payload) }
	type input func() ([]wsdest.Header, []byte)
	tests := []struct {
		name  string
		in    input
		model string
		want  string // substring of the error
	}{
		{"truncated JSON", func() ([]wsdest.Header, []byte) { return ts(tsPayload[:40]) }, "TimeseriesData", "invalid JSON"},
		{"empty value", func() ([]wsdest.Header, []byte) { return ts("") }, "TimeseriesData", "expected object"},
		{"payload is an array", func() ([]wsdest.Header, []byte) { return ts(`[1]`) }, "TimeseriesData", "expected object"},
		{"trailing data", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[]} x`) }, "TimeseriesData", "data after payload"},
		{"missing Timestamps", func() ([]wsdest.Header, []byte) { return ts(`{"NumericValues":{}}`) }, "TimeseriesData", "missing Timestamps"},
		{"Timestamps not an array", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":1}`) }, "TimeseriesData", "Timestamps must be an array"},
		{"timestamp is a string", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":["1"]}`) }, "TimeseriesData", "not a number"},
		{"timestamp is null", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[null]}`) }, "TimeseriesData", "not a number"},
		{"bad number", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[01]}`) }, "TimeseriesData", "expected ','"},
		{"section is an array", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[1],"NumericValues":[]}`) }, "TimeseriesData", "section must be an object"},
		{"column is not an array", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[1],"StringValues":{"s":"x"}}`) }, "TimeseriesData", "column must be an array"},
		{"column shorter", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[1,2],"NumericValues":{"a":[1]}}`) }, "TimeseriesData", "1 values for 2 timestamps"},
		{"column longer", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[1],"NumericValues":{"a":[1,2]}}`) }, "TimeseriesData", "2 values for 1 timestamps"},
		{"tag column ragged", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[1],"TagValues":{"t":[]}}`) }, "TimeseriesData", "tag column has 0 values"},
		{"bad base64", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[1],"BinaryValues":{"b":["!!!"]}}`) }, "TimeseriesData", "not valid base64"},
		{"bad base64 under a Tags parameter", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[1],"BinaryValues":{"Tags":["@"]}}`) }, "TimeseriesData", "not valid base64"},
		{"binary is a number", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[1],"BinaryValues":{"b":[1]}}`) }, "TimeseriesData", "not a base64 string"},
		{"parameter named Timestamp", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[1],"NumericValues":{"Timestamp":[1]}}`) }, "TimeseriesData", "named Timestamp"},
		{"escaped parameter named Timestamp, no rows", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[],"BinaryValues":{"Time\u0073tamp":[]}}`) }, "TimeseriesData", "named Timestamp"},
		{"invalid UTF-8 in a string", func() ([]wsdest.Header, []byte) {
			return ts("{\"Timestamps\":[1],\"StringValues\":{\"s\":[\"\xff\"]}}")
		}, "TimeseriesData", "invalid UTF-8"},
		{"control character in a string", func() ([]wsdest.Header, []byte) { return ts("{\"Timestamps\":[1],\"StringValues\":{\"s\":[\"\n\"]}}") }, "TimeseriesData", "control character"},
		{"bad escape", func() ([]wsdest.Header, []byte) { return ts(`{"Timestamps":[1],"StringValues":{"s":["\x"]}}`) }, "TimeseriesData", "invalid escape"},
		{"nested too deeply", func() ([]wsdest.Header, []byte) {
			return ts(`{"Timestamps":[1],"TagValues":{"t":[` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `]}}`)
		}, "TimeseriesData", "nested too deeply"},
		{"bad gzip", func() ([]wsdest.Header, []byte) { return hdrs("TimeseriesData", "[GZIP]JT"), []byte(tsPayload) }, "TimeseriesData", "gunzip"},
		{"truncated gzip", func() ([]wsdest.Header, []byte) {
			z := gz(tsPayload)
			return hdrs("TimeseriesData", "[GZIP]JT"), z[:len(z)-6]
		}, "TimeseriesData", "gunzip"},
		{"legacy gzip with an object V", func() ([]wsdest.Header, []byte) { return nil, legacy("[GZIP]JT", "ParameterData", tsPayload) }, "ParameterData", "not a base64 string"},
		{"legacy V string not base64", func() ([]wsdest.Header, []byte) { return nil, legacy("JT", "ParameterData", `"%%%"`) }, "ParameterData", "not valid base64"},
		{"legacy V is a number", func() ([]wsdest.Header, []byte) { return nil, legacy("JT", "ParameterData", `5`) }, "ParameterData", "expected object"},
		{"EventData not an object", func() ([]wsdest.Header, []byte) { return ev("EventData", `[]`) }, "EventData", "must be an object"},
		{"EventData without Id", func() ([]wsdest.Header, []byte) { return ev("EventData", `{"Timestamp":1,"Value":""}`) }, "EventData", "without Id"},
		{"EventData without Value", func() ([]wsdest.Header, []byte) { return ev("EventData", `{"Timestamp":1,"Id":""}`) }, "EventData", "without Value"},
		{"EventData without Timestamp", func() ([]wsdest.Header, []byte) { return ev("EventData", `{"Id":"","Value":""}`) }, "EventData", "without Timestamp"},
		{"EventData timestamp string", func() ([]wsdest.Header, []byte) { return ev("EventData", `{"Timestamp":"1","Id":"","Value":""}`) }, "EventData", "not a number"},
		{"EventData[] not an array", func() ([]wsdest.Header, []byte) { return ev("EventData[]", `{"Timestamp":1,"Id":"","Value":""}`) }, "EventData[]", "must be an array"},
		{"EventData[] with a non-object", func() ([]wsdest.Header, []byte) { return ev("EventData[]", `[1]`) }, "EventData[]", "must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, v := tt.in()
			var res Result
			err := new(Decoder).Decode(h, v, &res)
			if err == nil {
				t.Fatalf("no error; kind=%v rows=%q", res.Kind, rowsOf(&res))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if res.Kind != KindMalformed || res.Len() != 0 || res.ModelKey != tt.model {
				t.Fatalf("kind=%v rows=%d model=%q", res.Kind, res.Len(), res.ModelKey)
			}
		})
	}
}

func TestDecodeMaxDecoded(t *testing.T) {
	d := Decoder{MaxDecoded: 100}
	payload := `{"Timestamps":[1],"StringValues":{"s":["` + strings.Repeat("a", 200) + `"]}}`
	var res Result
	err := d.Decode(hdrs("TimeseriesData", "[GZIP]JT"), gz(payload), &res)
	if err == nil || !strings.Contains(err.Error(), "exceeds 100 bytes") {
		t.Fatalf("err = %v", err)
	}
	d.MaxDecoded = 0
	if err := d.Decode(hdrs("TimeseriesData", "[GZIP]JT"), gz(payload), &res); err != nil || res.Len() != 1 {
		t.Fatalf("err = %v, rows = %d", err, res.Len())
	}
}

// TestDecodeManyColumns covers the hash-table path of merge.
func TestDecodeManyColumns(t *testing.T) {
	var p, want strings.Builder
	p.WriteString(`{"Timestamps":[9],"NumericValues":{`)
	want.WriteString(`{`)
	for i := range 40 {
		if i > 0 {
			p.WriteByte(',')
			want.WriteByte(',')
		}
		fmt.Fprintf(&p, `"p%d":[%d]`, i, i)
		if i == 7 {
			fmt.Fprintf(&want, `"p%d":"dup"`, i)
		} else {
			fmt.Fprintf(&want, `"p%d":%d`, i, i)
		}
	}
	p.WriteString(`},"StringValues":{"p\u0037":["dup"],"q":["x"]}}`)
	want.WriteString(`,"q":"x","Tags":{},"Timestamp":9}`)
	var res Result
	if err := new(Decoder).Decode(hdrs("TimeseriesData", "JT"), []byte(p.String()), &res); err != nil {
		t.Fatal(err)
	}
	if res.Len() != 1 || string(res.Row(0)) != want.String() {
		t.Fatalf("rows %q\nwant %s", rowsOf(&res), want.String())
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindNotQuix: "not_quix", KindRows: "rows", KindIgnored: "ignored",
		KindUnsupported: "unsupported", KindMalformed: "malformed", 99: "unknown"} {
		if k.String() != want {
			t.Errorf("%d: %q", k, k.String())
		}
	}
}

// A record over MaxRows or MaxDecoded fails with ErrLimit before its rows
// are kept, whether plain or gzip, timeseries or events.
func TestDecodeLimits(t *testing.T) {
	ts := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"Timestamps":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprint(&b, i)
		}
		b.WriteString(`],"NumericValues":{},"StringValues":{},"BinaryValues":{},"TagValues":{}}`)
		return b.String()
	}
	events := func(n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(`{"Timestamp":1,"Id":"a","Value":"v"},`, n), ",") + "]"
	}
	tests := []struct {
		name       string
		d          Decoder
		model, cdc string
		value      []byte
		wantErr    bool
	}{
		{"rows at the limit", Decoder{MaxRows: 10}, "TimeseriesData", "JT", []byte(ts(10)), false},
		{"rows over", Decoder{MaxRows: 10}, "TimeseriesData", "JT", []byte(ts(11)), true},
		{"gzip rows over", Decoder{MaxRows: 10}, "TimeseriesData", "[GZIP]JT", gz(ts(11)), true},
		{"events over", Decoder{MaxRows: 3}, "EventData[]", "JT", []byte(events(4)), true},
		{"events at the limit", Decoder{MaxRows: 3}, "EventData[]", "JT", []byte(events(3)), false},
		{"row bytes over", Decoder{MaxDecoded: 200}, "TimeseriesData", "JT", []byte(ts(20)), true},
		{"gzip bomb", Decoder{MaxDecoded: 1 << 20}, "TimeseriesData", "[GZIP]JT", gz(strings.Repeat(" ", 4<<20)), true},
		{"default rows", Decoder{}, "TimeseriesData", "[GZIP]JT", gz(ts(DefaultMaxRows + 1)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res Result
			err := tt.d.Decode(hdrs(tt.model, tt.cdc), tt.value, &res)
			if got := errors.Is(err, ErrLimit); got != tt.wantErr {
				t.Fatalf("err = %v, want ErrLimit: %v", err, tt.wantErr)
			}
			if tt.wantErr && (res.Kind != KindMalformed || res.Len() != 0) {
				t.Fatalf("kind %v with %d rows", res.Kind, res.Len())
			}
		})
	}
}

// rowsOf returns the rows of r.
func rowsOf(r *Result) [][]byte {
	out := make([][]byte, r.Len())
	for i := range out {
		out[i] = r.Row(i)
	}
	return out
}

// A buffer kept from a large record that was not detached is not reused
// for a small one, whose rows the caller may keep (Detach) and so pin it.
func TestLargeBufferNotReused(t *testing.T) {
	var d Decoder
	res := Result{Gap: 2}
	var big strings.Builder
	big.WriteString(`{"Timestamps":[`)
	for i := range 20000 {
		if i > 0 {
			big.WriteByte(',')
		}
		fmt.Fprint(&big, i)
	}
	big.WriteString(`],"NumericValues":{"v":[` + strings.TrimSuffix(strings.Repeat("1,", 20000), ",") + `]}}`)
	if err := d.Decode(hdrs("TimeseriesData", "JT"), []byte(big.String()), &res); err != nil {
		t.Fatal(err)
	}
	if cap(res.buf) < 200<<10 {
		t.Fatalf("the large record took only %d bytes: the test does not cover the case", cap(res.buf))
	}
	if err := d.Decode(hdrs("TimeseriesData", "JT"), []byte(tsPayload), &res); err != nil {
		t.Fatal(err)
	}
	if c := cap(res.buf); c > 8<<10 {
		t.Errorf("a small record's rows sit in a buffer of %d bytes", c)
	}
	// The same for events.
	if err := d.Decode(hdrs("TimeseriesData", "JT"), []byte(big.String()), &res); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(hdrs("EventData", "JT"), []byte(`{"Timestamp":1,"Id":"e","Value":"v"}`), &res); err != nil {
		t.Fatal(err)
	}
	if c := cap(res.buf); c > 8<<10 {
		t.Errorf("a small event's row sits in a buffer of %d bytes", c)
	}
}
