package encode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/message"
)

var benchValue = []byte(`{"car":"car-1","speed":88.5,"rpm":12000,"gear":7,"throttle":0.93,"brake":0,"ts":1692703362840389000}`)

func benchRecord() *wsdest.Record {
	return &wsdest.Record{
		Topic: "telemetry", Partition: 3, Offset: 123456789, Timestamp: ts,
		Key:     []byte("car-1"),
		Headers: []wsdest.Header{{Key: "source", Value: []byte("sim")}},
		Value:   benchValue,
	}
}

func benchEncode(b *testing.B, rec *wsdest.Record, want [message.NumShapes]bool, perRecord int) {
	e := New(Options{})
	dst := make([]*message.Message, 0, perRecord)
	b.SetBytes(int64(len(rec.Value)))
	b.ReportAllocs()
	for b.Loop() {
		dst = e.Encode(dst[:0], rec, want)
		if len(dst) != perRecord {
			b.Fatal(len(dst))
		}
	}
}

func BenchmarkEncodePlain(b *testing.B) {
	benchEncode(b, benchRecord(), plainOnly, 1)
}

func BenchmarkEncodeEnvelope(b *testing.B) {
	benchEncode(b, benchRecord(), envelopeOnly, 1)
}

func BenchmarkEncodeBoth(b *testing.B) {
	benchEncode(b, benchRecord(), both, 1)
}

// writeArray writes the JSON array of n elements elem(0)...elem(n-1).
func writeArray(b *strings.Builder, n int, elem func(i int) string) {
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(elem(i))
	}
	b.WriteByte(']')
}

// BenchmarkEncodeQuixRows encodes a 10-row, 5-parameter TimeseriesData
// record in both shapes.
func BenchmarkEncodeQuixRows(b *testing.B) {
	const rows = 10
	var p strings.Builder
	p.WriteString(`{"Timestamps":`)
	writeArray(&p, rows, func(r int) string { return fmt.Sprint(1692703362840389000 + r) })
	p.WriteString(`,"NumericValues":{`)
	for i := range 5 {
		if i > 0 {
			p.WriteByte(',')
		}
		fmt.Fprintf(&p, `"p%d":`, i)
		writeArray(&p, rows, func(r int) string { return fmt.Sprintf("%d.5", r+i) })
	}
	p.WriteString(`},"TagValues":{"car":["a","a","a","a","a","a","a","a","a","a"]}}`)
	rec := benchRecord()
	rec.Headers = quixHeaders("TimeseriesData", "JT")
	rec.Value = []byte(p.String())
	for _, w := range []struct {
		name string
		want [message.NumShapes]bool
	}{{"plain", plainOnly}, {"both", both}} {
		b.Run(w.name, func(b *testing.B) {
			benchEncode(b, rec, w.want, rows)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
		})
	}
}
