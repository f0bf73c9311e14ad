package encode

import (
	"testing"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/hub"
)

// BenchmarkEncodeAtAllShapes is what the publisher does per record with the
// history on: the cursor, and the four frames (WebSocket and SSE, plain
// and envelope) of a telemetry record, for a topic of 12 partitions.
func BenchmarkEncodeAtAllShapes(b *testing.B) {
	e := New(Options{})
	rec := benchRecord()
	pos := wsdest.Cursor{Topic: wsdest.NewTopicIdentity("telemetry", [16]byte{1}), Offsets: make([]int64, 12)}
	for i := range pos.Offsets {
		pos.Offsets[i] = 123456000
	}
	dst := make([]*hub.Message, 0, 1)
	b.SetBytes(int64(len(rec.Value)))
	b.ReportAllocs()
	for b.Loop() {
		rec.Offset++
		dst = e.EncodeAt(dst[:0], rec, [hub.NumShapes]bool{true, true, true, true}, &pos)
		if len(dst) != 1 {
			b.Fatal(len(dst))
		}
	}
}
