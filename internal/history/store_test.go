package history

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/message"
)

func msg(p int32, off int64, key string, frame int) *message.Message {
	m := &message.Message{Partition: p, Offset: off, Key: []byte(key), Rows: 1, Timestamp: off}
	m.Frames[message.ShapeEnvelope] = make([]byte, frame)
	return m
}

func offsets(ms []*message.Message) []int64 {
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

// at is a client position: offsets by partition (-1: none).
func at(offs ...int64) *wsdest.Cursor { return &wsdest.Cursor{Offsets: offs} }

func TestStoreReadAndEviction(t *testing.T) {
	// Each message costs 100 + entryOverhead + 1 (key) bytes; room for 4.
	per := int64(100 + entryOverhead + 1)
	s := NewStore(StoreConfig{MaxBytes: 4 * per})
	s.Append([]*message.Message{msg(0, 10, "a", 100), msg(1, 5, "b", 100), msg(0, 11, "a", 100)})
	for _, c := range []struct {
		name  string
		pos   *wsdest.Cursor
		want  []int64
		spans []Span
	}{
		{"from the start", at(10, 5), []int64{10, 1005, 11}, []Span{{0, 10, 12}, {1, 5, 6}}},
		{"after some", at(11, 6), []int64{11}, []Span{{0, 11, 12}}},
		{"one partition unknown", at(-1, 5), []int64{1005}, []Span{{1, 5, 6}}},
		// Before the coverage: those records are Kafka's to give.
		{"before the coverage", at(9, 4), nil, nil},
	} {
		b := s.Read(c.pos, 100)
		if got := offsets(b.Msgs); !equal(got, c.want) || fmt.Sprint(b.Spans) != fmt.Sprint(c.spans) {
			t.Errorf("%s: Read = %v %v, want %v %v", c.name, got, b.Spans, c.want, c.spans)
		}
	}
	if b := s.Read(at(10, 5), 1); !equal(offsets(b.Msgs), []int64{10}) || fmt.Sprint(b.Spans) != fmt.Sprint([]Span{{0, 10, 11}, {1, 5, 5}}) {
		t.Errorf("Read of at most one = %v %v", offsets(b.Msgs), b.Spans)
	}
	s.Append([]*message.Message{msg(1, 6, "b", 100), msg(0, 12, "a", 100)})
	s.Append([]*message.Message{msg(0, 13, "a", 100), msg(0, 14, "a", 100), msg(0, 15, "a", 100)})
	// Everything of partition 1 was evicted: the store still knows it
	// holds all of [7, 7), and nothing before.
	if from, end := s.Range(1); from != 7 || end != 7 {
		t.Fatalf("range of 1 = [%d, %d), want [7, 7)", from, end)
	}
	st := s.Stats()
	if st.Messages != 4 || st.Bytes > 4*per || st.Evicted != 4 {
		t.Fatalf("stats %+v", st)
	}
	if c := s.Coverage(0); c != 12 {
		t.Fatalf("coverage of 0 = %d, want 12", c)
	}
	if c := s.Coverage(7); c != -1 {
		t.Fatalf("coverage of an unknown partition = %d", c)
	}
	byPart, from := s.Last(2, func(m *message.Message) bool { return string(m.Key) == "a" })
	if !equal(offsets(byPart[0]), []int64{14, 15}) || len(byPart[1]) != 0 || from[0] != 12 {
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
	rows := func(off int64) []*message.Message {
		var ms []*message.Message
		for i := range int32(2) {
			m := msg(0, off, "", 10)
			m.Row, m.Rows = i, 2
			ms = append(ms, m)
		}
		return ms
	}
	s.Append(rows(1))
	s.Append(rows(2)) // over the bound: record 1 goes, both rows
	if got := offsets(s.Read(at(0), 100).Msgs); got != nil {
		t.Fatalf("after eviction, from 0: %v, want nothing (not covered)", got)
	}
	if got := offsets(s.Read(at(2), 100).Msgs); !equal(got, []int64{2, 2}) {
		t.Fatalf("after eviction: %v", got)
	}
	if c := s.Coverage(0); c != 2 {
		t.Fatalf("coverage %d, want 2", c)
	}
}

func TestStoreAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewStore(StoreConfig{MaxAge: time.Minute})
		s.Append([]*message.Message{msg(0, 1, "", 1)})
		time.Sleep(30 * time.Second)
		s.Append([]*message.Message{msg(0, 2, "", 1)})
		time.Sleep(45 * time.Second)
		s.Append([]*message.Message{msg(0, 3, "", 1)})
		if got := offsets(s.Read(at(2), 100).Msgs); !equal(got, []int64{2, 3}) {
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
	o := &message.Origin{Before: &before, Head: "head"}
	key := []byte("key")
	var rows []*message.Message
	for i := range int32(3) {
		m := &message.Message{Key: key, Offset: 4, Partition: 1, Row: i, Rows: 3, Origin: o}
		m.Frames[message.ShapePlain] = make([]byte, 10+int(i))
		rows = append(rows, m)
	}
	single := &message.Message{Offset: 5, Rows: 1, Origin: &message.Origin{Cursor: "cursor"}}
	single.Frames[message.ShapeEnvelope] = make([]byte, 50)
	s := NewStore(StoreConfig{})
	s.Append(append(rows, single))
	origin := int64(unsafe.Sizeof(message.Origin{}))
	want := 3*int64(entryOverhead) + 10 + 11 + 12 + 3 + origin + 4 + int64(unsafe.Sizeof(before)) + 16 +
		int64(entryOverhead) + 50 + origin + 6
	if got := s.Stats().Bytes; got != want {
		t.Fatalf("%d bytes, want %d", got, want)
	}
}

// Where the published offsets jump forward, the store covers a partition
// only from the jump on (it never held what was skipped): Range, Last
// and an eviction of the messages before the jump say so.
func TestStoreJump(t *testing.T) {
	s := NewStore(StoreConfig{})
	s.Append([]*message.Message{msg(0, 0, "a", 10), msg(0, 1, "a", 10), msg(0, 2, "a", 10)})
	s.Append([]*message.Message{msg(0, 10, "a", 10), msg(0, 11, "a", 10)})
	if from, end := s.Range(0); from != 10 || end != 12 {
		t.Fatalf("range [%d, %d), want [10, 12)", from, end)
	}
	byPart, _ := s.Last(5, func(*message.Message) bool { return true })
	if got := offsets(byPart[0]); !equal(got, []int64{10, 11}) {
		t.Fatalf("last %v, want [10 11]", got)
	}
	if b := s.Read(at(1), 10); len(b.Spans) != 0 {
		t.Fatalf("read from 1: %+v, want nothing (before the coverage)", b)
	}
	s.mu.Lock()
	s.maxBytes = s.bytes - 1 // evicts offset 0
	s.evictLocked(time.Now().UnixNano())
	s.mu.Unlock()
	if from, _ := s.Range(0); from != 10 {
		t.Fatalf("coverage %d after evicting offset 0, want 10", from)
	}
}
