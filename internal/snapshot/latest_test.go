package snapshot

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
)

// quixRows returns a Quix record of n rows.
func quixRows(n int) []byte {
	var vals, ts []string
	for i := range n {
		vals = append(vals, fmt.Sprint(i))
		ts = append(ts, fmt.Sprint(1796167464325734270+i))
	}
	return []byte(`{"C":"JT","K":"ParameterData","V":{"NumericValues":{"a":[` + strings.Join(vals, ",") + `]},"Timestamps":[` + strings.Join(ts, ",") + `]}}`)
}

// A key whose latest record is a Quix record of many rows holds its last
// row alone: not the rows' shared allocation, nor their frame buffers.
func TestLatestKeepsOneRowOfAQuixRecord(t *testing.T) {
	const rows = 20_000
	enc := encode.New(encode.Options{Logger: discard()})
	pos := wsdest.Cursor{Offsets: []int64{0}}
	tbl := New(Config{Logger: discard()})
	value := quixRows(rows)
	before := int64(liveHeap())
	rec := &wsdest.Record{Topic: "t", Partition: 0, Offset: 0, Key: []byte("k"), Value: value, Timestamp: time.Now()}
	msgs := enc.EncodeKept(nil, rec, [message.NumShapes]bool{}, &pos)
	if len(msgs) != rows {
		t.Fatalf("%d messages, want %d", len(msgs), rows)
	}
	last := msgs[rows-1]
	wantCursor, wantPlain := last.Cursor(), string(last.Frames[message.ShapePlain])
	wantOffset, wantRow := last.Offset, last.Row
	last = nil
	tbl.Put(Latest(msgs))
	msgs, value, rec = nil, nil, nil
	held := int64(liveHeap()) - before
	runtime.KeepAlive(tbl)
	if held > 256<<10 {
		t.Fatalf("the table holds %d KB for one key's last row: the record's %d rows are kept alive", held>>10, rows)
	}
	got := tbl.Get([]byte("k"))
	if got.Offset != wantOffset || got.Row != wantRow || got.Cursor() != wantCursor || string(got.Frames[message.ShapePlain]) != wantPlain {
		t.Fatalf("the kept row differs from the record's last: %+v", got)
	}
}
