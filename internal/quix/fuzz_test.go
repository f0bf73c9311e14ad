package quix

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/wsdest/wsdest"
)

// FuzzDecode checks that Decode never panics, that every row it emits is a
// valid JSON object in valid UTF-8, that an error comes exactly with
// KindMalformed, and that a Decoder and Result reused after arbitrary
// earlier inputs give the same answer as fresh ones.
func FuzzDecode(f *testing.F) {
	seeds := []struct {
		model, codec string
		value        []byte
	}{
		{"", "", []byte(docLegacy)},
		{"", "", legacy("JT", "ParameterData", tsPayload)},
		{"", "", legacy("[GZIP]JT", "ParameterData", `"`+b64(gz(tsPayload))+`"`)},
		{"", "", legacy("JT", "EventData", `{"Timestamp":1,"Id":"e","Value":""}`)},
		{"", "", []byte(`{"a":1}`)},
		{"", "", []byte("<\x00\x00\x00\x07/\x00/\x02>")},
		{"TimeseriesData", "JT", []byte(tsPayload)},
		{"TimeseriesData", "[GZIP]JT", gz(tsPayload)},
		{"TimeseriesData", "JT", []byte(`{"BinaryValues":{"b":["AQI=",null]},"TagValues":{"t":["x",null]},"StringValues":{"s":["v","\u00e9"]},"Timestamps":[7,8],"NumericValues":{"n":[0,1e5],"Tags":[1,2]}}`)},
		{"ParameterData", "J", []byte(`{"Timestamps":[1],"NumericValues":{"x":[1,2,3],"y":[4]},"StringValues":{"\u0078":["s"]}}`)},
		{"EventData", "JT", []byte(`{"Id":"an_event","Value":"any_string","Tags":{"tag1":"tag"},"Timestamp":1692703362840389000}`)},
		{"EventData[]", "J", []byte(`[{"Timestamp":1,"Id":"a","Value":"x","Tags":null},{"Timestamp":2,"Id":"b","Value":"y"}]`)},
		{"EventData[]", "[GZIP]J", gz(`[{"Timestamp":1,"Id":"a","Value":"x"}]`)},
		{"StreamEnd", "JT", nil},
		{"TimeseriesData", "PB", []byte{8, 1}},
	}
	for _, s := range seeds {
		f.Add(s.model, s.codec, s.value)
	}
	// The reused Result also leaves a gap before each row, which must not
	// change them.
	var reused Decoder
	reusedRes := Result{Gap: 3}
	f.Fuzz(func(t *testing.T, model, codec string, value []byte) {
		var headers []wsdest.Header
		if model != "" || codec != "" {
			headers = hdrs(model, codec)
		}
		var fresh Result
		err := new(Decoder).Decode(headers, value, &fresh)
		if (err != nil) != (fresh.Kind == KindMalformed) {
			t.Fatalf("err=%v kind=%v", err, fresh.Kind)
		}
		if fresh.Kind != KindRows && fresh.Len() != 0 {
			t.Fatalf("kind %v with %d rows", fresh.Kind, fresh.Len())
		}
		for _, r := range rowsOf(&fresh) {
			if !json.Valid(r) || !utf8.Valid(r) || r[0] != '{' {
				t.Fatalf("invalid row %q", r)
			}
		}
		err2 := reused.Decode(headers, value, &reusedRes)
		if (err == nil) != (err2 == nil) || fresh.Kind != reusedRes.Kind || fresh.ModelKey != reusedRes.ModelKey ||
			fresh.Codec != reusedRes.Codec || fresh.Reason != reusedRes.Reason || fresh.Len() != reusedRes.Len() {
			t.Fatalf("reused decoder differs: %v %v / %v %v", err, fresh.Kind, err2, reusedRes.Kind)
		}
		for i := range rowsOf(&fresh) {
			if !bytes.Equal(fresh.Row(i), reusedRes.Row(i)) {
				t.Fatalf("row %d differs: %q / %q", i, fresh.Row(i), reusedRes.Row(i))
			}
		}
	})
}
