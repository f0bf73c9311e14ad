package wsframe_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsdest/wsdest/internal/wsframe"
)

// readFrame parses b as exactly one server frame with an independent
// implementation.
func readFrame(t *testing.T, b []byte) ws.Frame {
	t.Helper()
	r := bytes.NewReader(b)
	h, err := ws.ReadHeader(r)
	if err != nil {
		t.Fatalf("ReadHeader: %v", err)
	}
	if h.Length > int64(r.Len()) {
		t.Fatalf("header declares %d bytes, %d follow", h.Length, r.Len())
	}
	f := ws.Frame{Header: h, Payload: make([]byte, h.Length)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes after the frame", r.Len())
	}
	if f.Header.Masked || !f.Header.Fin || f.Header.Rsv != 0 {
		t.Fatalf("header %+v, want final, unmasked, no reserved bits", f.Header)
	}
	return f
}

func TestText(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte("a"), n)
		for name, f := range map[string][]byte{
			"Text":     wsframe.Text(payload),
			"TextFunc": wsframe.TextFunc(n, func(p []byte) { copy(p, payload) }),
		} {
			if len(f) != wsframe.HeaderLen(n)+n || cap(f) != len(f) {
				t.Errorf("%s(%d): len %d cap %d, want exactly %d", name, n, len(f), cap(f), wsframe.HeaderLen(n)+n)
			}
			got := readFrame(t, f)
			if got.Header.OpCode != ws.OpText || !bytes.Equal(got.Payload, payload) {
				t.Errorf("%s(%d): opcode %v, %d payload bytes", name, n, got.Header.OpCode, len(got.Payload))
			}
		}
	}
}

func TestClose(t *testing.T) {
	for _, tt := range []struct {
		code   uint16
		reason string
		want   string
	}{
		{1000, "", ""},
		{1008, "too slow", "too slow"},
		{1001, "going away", "going away"},
		{1011, strings.Repeat("r", 200), strings.Repeat("r", 123)},
	} {
		f := readFrame(t, wsframe.Close(tt.code, tt.reason))
		code, reason := ws.ParseCloseFrameData(f.Payload)
		if f.Header.OpCode != ws.OpClose || uint16(code) != tt.code || reason != tt.want {
			t.Errorf("Close(%d, %.10q...) = %v %d %.10q...", tt.code, tt.reason, f.Header.OpCode, code, reason)
		}
	}
}

func TestControl(t *testing.T) {
	for _, tt := range []struct {
		op      byte
		payload string
		want    string
	}{
		{wsframe.OpPing, "", ""},
		{wsframe.OpPong, "abc", "abc"},
		{wsframe.OpPing, strings.Repeat("p", 130), strings.Repeat("p", 125)},
	} {
		f := readFrame(t, wsframe.Control(tt.op, []byte(tt.payload)))
		if byte(f.Header.OpCode) != tt.op || string(f.Payload) != tt.want {
			t.Errorf("Control(%d, %d bytes) = %v with %d bytes", tt.op, len(tt.payload), f.Header.OpCode, len(f.Payload))
		}
	}
}

func TestAppendHeader(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 40} {
		h := wsframe.AppendHeader([]byte("prefix"), wsframe.OpBinary, n)
		if !bytes.HasPrefix(h, []byte("prefix")) || len(h) != 6+wsframe.HeaderLen(n) {
			t.Fatalf("AppendHeader(%d): %x", n, h)
		}
		got, err := ws.ReadHeader(bytes.NewReader(h[6:]))
		if err != nil || got.OpCode != ws.OpBinary || got.Length != int64(n) || !got.Fin || got.Masked {
			t.Errorf("AppendHeader(%d): %+v, %v", n, got, err)
		}
	}
}
