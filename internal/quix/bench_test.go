package quix

import (
	"fmt"
	"strings"
	"testing"
)

// benchPayload builds a TimeseriesData payload with rows rows of params
// numeric parameters and one tag.
func benchPayload(rows, params int) []byte {
	var b strings.Builder
	b.WriteString(`{"Timestamps":[`)
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", 1692703362840389000+int64(r)*1000)
	}
	b.WriteString(`],"NumericValues":{`)
	for p := range params {
		if p > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"param_%d":[`, p)
		for r := range rows {
			if r > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d.%d", r*p, r)
		}
		b.WriteByte(']')
	}
	b.WriteString(`},"StringValues":{},"BinaryValues":{},"TagValues":{"car":[`)
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"car-1"`)
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// BenchmarkDecodeTimeseries decodes a 10-row, 5-parameter record with a
// reused Decoder and Result, as the encoder does.
func BenchmarkDecodeTimeseries(b *testing.B) {
	const rows = 10
	for _, tc := range []struct {
		name  string
		codec string
		value []byte
	}{
		{"json", "JT", benchPayload(rows, 5)},
		{"gzip", "[GZIP]JT", gz(string(benchPayload(rows, 5)))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := hdrs("TimeseriesData", tc.codec)
			var d Decoder
			var res Result
			b.SetBytes(int64(len(tc.value)))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Decode(h, tc.value, &res); err != nil || res.Len() != rows {
					b.Fatal(err, res.Len())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
		})
	}
}

func BenchmarkDecodeNotQuix(b *testing.B) {
	v := []byte(`{"speed":1,"rpm":2,"gear":"N","Timestamp":1692703362840389000}`)
	var d Decoder
	var res Result
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(nil, v, &res); err != nil || res.Kind != KindNotQuix {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeLargeRecord decodes a gzip record of 200,000 rows of one
// parameter and one tag, as the hostile-input benchmark's: its buffers are
// larger than what a Decoder keeps between records, so each iteration
// allocates them again, and B/op is what one such record costs the
// decoder.
func BenchmarkDecodeLargeRecord(b *testing.B) {
	const rows = 200_000
	value := gz(string(benchPayload(rows, 1)))
	h := hdrs("TimeseriesData", "[GZIP]JT")
	var d Decoder
	var res Result
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(h, value, &res); err != nil || res.Len() != rows {
			b.Fatal(err, res.Len())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}
