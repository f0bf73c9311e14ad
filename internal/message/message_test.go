package message

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
)

func TestDeflatedBuiltOnceAndShared(t *testing.T) {
	m := &Message{}
	m.Frames[ShapePlain] = []byte("plain frame")
	m.Frames[ShapeEnvelope] = []byte("envelope frame")
	var calls atomic.Int32
	deflate := func(f []byte) []byte {
		calls.Add(1)
		return append([]byte("z:"), f...)
	}

	const n = 8
	var wg sync.WaitGroup
	var built atomic.Int32
	got := make([][]byte, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, b := m.Deflated(ShapePlain, deflate)
			if b {
				built.Add(1)
			}
			got[i] = f
		}()
	}
	wg.Wait()
	if built.Load() != 1 {
		t.Fatalf("%d callers report building the frame, want 1", built.Load())
	}
	for i := range got {
		if &got[i][0] != &got[0][0] {
			t.Fatalf("caller %d got its own bytes %q, want the shared %q", i, got[i], got[0])
		}
	}
	before := calls.Load()
	f, b := m.Deflated(ShapePlain, deflate)
	if b || calls.Load() != before || !bytes.Equal(f, []byte("z:plain frame")) {
		t.Fatalf("later call: %q built=%v, deflate called %d more times; want the kept frame, no new call", f, b, calls.Load()-before)
	}
	if f, b := m.Deflated(ShapeEnvelope, deflate); !b || string(f) != "z:envelope frame" {
		t.Fatalf("other shape: %q built=%v, want its own frame, built", f, b)
	}
}

func TestNotice(t *testing.T) {
	tests := []struct {
		name      string
		partition int32
		rows      int32
		want      bool
	}{
		{"notice", -1, 0, true},
		{"record", 0, 1, false},
		{"row of a record of partition -1", -1, 2, false},
		{"partition 0 without rows", 0, 0, false},
	}
	for _, tt := range tests {
		m := &Message{Partition: tt.partition, Rows: tt.rows}
		if got := m.Notice(); got != tt.want {
			t.Errorf("%s: Notice() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
