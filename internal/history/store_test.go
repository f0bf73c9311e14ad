package history

import (
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/hub"
)

func msg(p int32, off int64, key string, frame int) *hub.Message {
	m := &hub.Message{Partition: p, Offset: off, Key: []byte(key), Rows: 1, Timestamp: off}
	m.Frames[hub.ShapeEnvelope] = make([]byte, frame)
	return m
}

func offsets(ms []*hub.Message) []int64 {
	var out []int64
	for _, m := range ms {
		out = append(out, int64(m.Partition)*1000+m.Offset)
	}
	return out
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStoreSinceAndEviction(t *testing.T) {
	// Each message costs 100 + entryOverhead + 1 (key) bytes; room for 4.
	per := int64(100 + entryOverhead + 1)
	s := NewStore(StoreConfig{MaxBytes: 4 * per})
	s.Append([]*hub.Message{msg(0, 10, "a", 100), msg(1, 5, "b", 100), msg(0, 11, "a", 100)})
	all := func(int32) int64 { return 0 }
	if got := offsets(s.Since(all).Msgs); !equal(got, []int64{10, 1005, 11}) {
		t.Fatalf("Since = %v", got)
	}
	if got := offsets(s.Since(func(p int32) int64 { return map[int32]int64{0: 11, 1: 6}[p] }).Msgs); !equal(got, []int64{11}) {
		t.Fatalf("Since(11, 6) = %v", got)
	}
	if got := offsets(s.Since(func(p int32) int64 { return -1 + int64(p)*6 }).Msgs); !equal(got, []int64{1005}) {
		t.Fatalf("Since(none, 5) = %v", got)
	}
	s.Append([]*hub.Message{msg(1, 6, "b", 100), msg(0, 12, "a", 100)})
	st := s.Stats()
	if st.Messages != 4 || st.Bytes > 4*per || st.Evicted != 1 {
		t.Fatalf("stats %+v", st)
	}
	if c := s.Coverage(0); c != 11 {
		t.Fatalf("coverage of 0 = %d, want 11", c)
	}
	if c := s.Coverage(1); c != 5 {
		t.Fatalf("coverage of 1 = %d, want 5", c)
	}
	if c := s.Coverage(7); c != -1 {
		t.Fatalf("coverage of an unknown partition = %d", c)
	}
	byPart, from := s.Last(2, func(m *hub.Message) bool { return string(m.Key) == "a" })
	if !equal(offsets(byPart[0]), []int64{11, 12}) || len(byPart[1]) != 0 || from[0] != 11 {
		t.Fatalf("Last = %v %v, from %v", offsets(byPart[0]), offsets(byPart[1]), from)
	}
	s.Reset()
	if s.Stats().Messages != 0 || s.Coverage(0) != -1 {
		t.Fatal("Reset kept messages")
	}
}

func TestStoreEvictsWholeRecords(t *testing.T) {
	per := int64(10 + entryOverhead)
	s := NewStore(StoreConfig{MaxBytes: 3 * per})
	rows := func(off int64) []*hub.Message {
		var ms []*hub.Message
		for i := range int32(2) {
			m := msg(0, off, "", 10)
			m.Row, m.Rows = i, 2
			ms = append(ms, m)
		}
		return ms
	}
	s.Append(rows(1))
	s.Append(rows(2)) // over the bound: record 1 goes, both rows
	if got := offsets(s.Since(func(int32) int64 { return 0 }).Msgs); !equal(got, []int64{2, 2}) {
		t.Fatalf("after eviction: %v", got)
	}
	if c := s.Coverage(0); c != 2 {
		t.Fatalf("coverage %d, want 2", c)
	}
}

func TestStoreAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewStore(StoreConfig{MaxAge: time.Minute})
		s.Append([]*hub.Message{msg(0, 1, "", 1)})
		time.Sleep(30 * time.Second)
		s.Append([]*hub.Message{msg(0, 2, "", 1)})
		time.Sleep(45 * time.Second)
		s.Append([]*hub.Message{msg(0, 3, "", 1)})
		if got := offsets(s.Since(func(int32) int64 { return 0 }).Msgs); !equal(got, []int64{2, 3}) {
			t.Fatalf("after 75 s: %v, want the two younger than a minute", got)
		}
		if c := s.Coverage(0); c != 2 {
			t.Fatalf("coverage %d, want 2", c)
		}
	})
}

// TestStoreSize: what the rows of a record share (key, Origin) is counted
// once, on its first row; each row counts entryOverhead and its frames.
func TestStoreSize(t *testing.T) {
	before := wsdest.Cursor{Offsets: []int64{3, 4}}
	o := &hub.Origin{Before: &before, Head: "head"}
	key := []byte("key")
	var rows []*hub.Message
	for i := range int32(3) {
		m := &hub.Message{Key: key, Offset: 4, Partition: 1, Row: i, Rows: 3, Origin: o}
		m.Frames[hub.ShapePlain] = make([]byte, 10+int(i))
		rows = append(rows, m)
	}
	single := &hub.Message{Offset: 5, Rows: 1, Origin: &hub.Origin{Cursor: "cursor"}}
	single.Frames[hub.ShapeEnvelope] = make([]byte, 50)
	s := NewStore(StoreConfig{})
	s.Append(append(rows, single))
	origin := int64(unsafe.Sizeof(hub.Origin{}))
	want := 3*int64(entryOverhead) + 10 + 11 + 12 + 3 + origin + 4 + int64(unsafe.Sizeof(before)) + 16 +
		int64(entryOverhead) + 50 + origin + 6
	if got := s.Stats().Bytes; got != want {
		t.Fatalf("%d bytes, want %d", got, want)
	}
}
