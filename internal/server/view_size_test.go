package server

import (
	"testing"
	"unsafe"
)

// TestViewClientSize: what the server keeps for a WebSocket client with a
// view (docs/performance.md: its extra, in the 80-byte size class that
// TLS and resuming clients use too, and the view's hold, in the 32-byte
// one) does not grow unnoticed.
func TestViewClientSize(t *testing.T) {
	if n := unsafe.Sizeof(heldExtra{}); n > 80 {
		t.Fatalf("heldExtra is %d bytes: past its 80-byte size class", n)
	}
	if n := unsafe.Sizeof(viewHold{}); n > 32 {
		t.Fatalf("viewHold is %d bytes: past the 32-byte size class", n)
	}
}
