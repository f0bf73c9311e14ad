package snapshot

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
)

// liveHeap returns the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rss returns the process's resident set size (Linux: /proc/self/statm),
// 0 where it cannot be read.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// keptMessages encodes n records of 300-byte JSON values over n keys as
// the tap keeps them (encode.EncodeKept, the key cloned).
func keptMessages(n int) []*message.Message {
	enc := encode.New(encode.Options{Logger: discard()})
	pad := strings.Repeat("x", 300-len(`{"i":0000000,"pad":""}`))
	pos := wsdest.Cursor{Offsets: []int64{0, 0, 0}}
	out := make([]*message.Message, 0, n)
	for i := range n {
		rec := &wsdest.Record{Topic: "bench", Partition: int32(i % 3), Offset: int64(i / 3),
			Key: []byte(fmt.Sprintf("sensor-%07d", i)), Value: []byte(fmt.Sprintf(`{"i":%07d,"pad":%q}`, i, pad)), Timestamp: time.Now()}
		msgs := enc.EncodeKept(nil, rec, [message.NumShapes]bool{}, &pos)
		key := bytes.Clone(rec.Key)
		for _, m := range msgs {
			m.Key = key
		}
		out = append(out, msgs[len(msgs)-1])
	}
	return out
}

// BenchmarkTableMemory measures the table of 100,000 keys of 300-byte
// values (the default bound): the live heap of the messages alone (what
// the history holds of them), of the table over them, the table's own
// bytes per key (two map entries, a list entry and pointers), and the
// process's RSS with the table (run it alone: -bench TableMemory).
func BenchmarkTableMemory(b *testing.B) {
	const keys = DefaultMaxKeys
	for range b.N {
		base := liveHeap()
		msgs := keptMessages(keys)
		withMsgs := liveHeap()
		tbl := New(Config{Logger: discard()})
		for _, m := range msgs {
			tbl.Put(m)
		}
		withTable := liveHeap()
		b.ReportMetric(float64(withMsgs-base)/(1<<20), "messages-MiB")
		b.ReportMetric(float64(withTable-base)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(withTable-withMsgs)/keys, "table-B/key")
		b.ReportMetric(float64(rss())/(1<<20), "rss-MiB")
		if tbl.Stats().Keys != keys {
			b.Fatalf("%d keys", tbl.Stats().Keys)
		}
		runtime.KeepAlive(msgs)
	}
}

// BenchmarkPut measures the tap's cost per published record: a Put into a
// full table (each one an update of a key already there).
func BenchmarkPut(b *testing.B) {
	msgs := keptMessages(10_000)
	tbl := New(Config{Logger: discard()})
	for _, m := range msgs {
		tbl.Put(m)
	}
	b.ResetTimer()
	for i := range b.N {
		tbl.Put(msgs[i%len(msgs)])
	}
}

// BenchmarkSnapshotFrames measures the framing of a 10,000-key snapshot
// for an SSE envelope client (Frame, one message at a time, as a client's
// snapshot is pushed).
func BenchmarkSnapshotFrames(b *testing.B) {
	tbl := New(Config{Logger: discard()})
	for _, m := range keptMessages(10_000) {
		tbl.Put(m)
	}
	all := tbl.View().Messages(func([]byte) bool { return true })
	b.ResetTimer()
	for range b.N {
		for _, m := range all {
			Frame(m, message.ShapeSSEEnvelope, "POINT")
		}
	}
}

// BenchmarkCapture measures what a snapshot costs under the publisher's
// lock, 100,000 keys, one change between two snapshots: Capture.
func BenchmarkCapture(b *testing.B) {
	msgs := keptMessages(DefaultMaxKeys)
	tbl := New(Config{Logger: discard()})
	for _, m := range msgs {
		tbl.Put(m)
	}
	b.ResetTimer()
	for i := range b.N {
		tbl.Put(msgs[i%len(msgs)])
		tbl.Capture()
	}
}

// BenchmarkViewOf measures a snapshot at a new point, 100,000 keys, one
// change between two points: Capture, then the View built from it outside
// the publisher's lock.
func BenchmarkViewOf(b *testing.B) {
	msgs := keptMessages(DefaultMaxKeys)
	tbl := New(Config{Logger: discard()})
	for _, m := range msgs {
		tbl.Put(m)
	}
	b.ResetTimer()
	for i := range b.N {
		tbl.Put(msgs[i%len(msgs)])
		tbl.ViewOf(tbl.Capture())
	}
}
