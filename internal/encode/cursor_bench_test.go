package encode

import (
	"strconv"
	"strings"
	"testing"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/message"
)

// benchPublish runs encode, which returns the messages of rec at pos, as
// the publisher does, for rec at successive offsets.
func benchPublish(b *testing.B, rec *wsdest.Record, pos *wsdest.Cursor, perRecord int,
	encode func(dst []*message.Message, rec *wsdest.Record, pos *wsdest.Cursor) []*message.Message) {
	dst := make([]*message.Message, 0, perRecord)
	b.ReportAllocs()
	for b.Loop() {
		rec.Offset++
		dst = encode(dst[:0], rec, pos)
		if len(dst) != perRecord {
			b.Fatal(len(dst))
		}
	}
}

// pos12 is a position in a topic of 12 partitions.
func pos12() *wsdest.Cursor {
	pos := wsdest.Cursor{Topic: wsdest.NewTopicIdentity("telemetry", [16]byte{1}), Offsets: make([]int64, 12)}
	for i := range pos.Offsets {
		pos.Offsets[i] = 123456000
	}
	return &pos
}

// BenchmarkEncodeAtAllShapes is what the publisher does per record while
// clients of every shape are connected: the cursor, and the four frames
// (WebSocket and SSE, plain and envelope) of a telemetry record, for a
// topic of 12 partitions.
func BenchmarkEncodeAtAllShapes(b *testing.B) {
	e := New(Options{})
	rec := benchRecord()
	b.SetBytes(int64(len(rec.Value)))
	benchPublish(b, rec, pos12(), 1, func(dst []*message.Message, rec *wsdest.Record, pos *wsdest.Cursor) []*message.Message {
		return e.EncodeAt(dst, rec, allShapes, pos)
	})
}

// BenchmarkEncodeKept is what the publisher does per record with the
// history on and only plain WebSocket clients connected: the cursor, the
// plain frame and the envelope's head of a telemetry record, for a topic
// of 12 partitions.
func BenchmarkEncodeKept(b *testing.B) {
	e := New(Options{})
	rec := benchRecord()
	b.SetBytes(int64(len(rec.Value)))
	benchPublish(b, rec, pos12(), 1, func(dst []*message.Message, rec *wsdest.Record, pos *wsdest.Cursor) []*message.Message {
		return e.EncodeKept(dst, rec, plainOnly, pos)
	})
}

// BenchmarkEncodeLargeRecord is what a gzip Quix record of 200,000 short
// rows (the hostile-input benchmark's) costs the publisher with the
// history on and only plain clients connected: B/op is the memory of its
// messages and frames, and the decoder's garbage.
func BenchmarkEncodeLargeRecord(b *testing.B) {
	const rows = 200_000
	var p strings.Builder
	p.WriteString(`{"Timestamps":`)
	writeArray(&p, rows, strconv.Itoa)
	p.WriteString(`,"NumericValues":{"v":`)
	writeArray(&p, rows, func(int) string { return "1" })
	p.WriteString(`}}`)
	rec := benchRecord()
	rec.Headers = quixHeaders("TimeseriesData", "[GZIP]JT")
	rec.Value = gz(p.String())
	e := New(Options{})
	pos := wsdest.Cursor{Topic: wsdest.NewTopicIdentity("telemetry", [16]byte{1})}
	benchPublish(b, rec, &pos, rows, func(dst []*message.Message, rec *wsdest.Record, pos *wsdest.Cursor) []*message.Message {
		return e.EncodeKept(dst, rec, plainOnly, pos)
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}
