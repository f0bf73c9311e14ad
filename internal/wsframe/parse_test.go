package wsframe_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wsdest/wsdest/internal/wsframe"
)

// events records what a Parser reports, as one string per event.
type events []string

func (e *events) Ping(p []byte) { *e = append(*e, fmt.Sprintf("ping %q", p)) }
func (e *events) Pong()         { *e = append(*e, "pong") }
func (e *events) CloseFrame(code uint16, r string) {
	*e = append(*e, fmt.Sprintf("close %d %q", code, r))
}

var mask = [4]byte{0xA1, 0xB2, 0xC3, 0xD4}

// frame encodes a client frame: b0 is FIN|RSV|opcode, the payload is
// masked with mask.
func frame(b0 byte, payload []byte) []byte {
	return frameLen(b0, payload, uint64(len(payload)))
}

// frameLen is frame with a declared length that may differ from the
// payload's (for frames cut short or lying about their size).
func frameLen(b0 byte, payload []byte, n uint64) []byte {
	f := []byte{b0}
	switch {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xFFFF:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, n)
	}
	f = append(f, mask[:]...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	return f
}

func unmasked(b0 byte, payload []byte) []byte {
	return append([]byte{b0, byte(len(payload))}, payload...)
}

// First bytes of final frames.
const (
	fin    = 0x80
	fText  = fin | wsframe.OpText
	fBin   = fin | wsframe.OpBinary
	fCont  = fin | wsframe.OpContinuation
	fPing  = fin | wsframe.OpPing
	fPong  = fin | wsframe.OpPong
	fClose = fin | wsframe.OpClose
)

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

type feedResult struct {
	events events
	code   uint16 // close code of the ProtocolError; 0 = none
	reason string
}

// feed gives p the input in chunks of at most chunk bytes (0 = all at
// once), stopping at the first error.
func feed(p *wsframe.Parser, in []byte, chunk int) feedResult {
	var r feedResult
	if chunk <= 0 {
		chunk = len(in) + 1
	}
	for len(in) > 0 {
		n := min(chunk, len(in))
		if err := p.Feed(in[:n], &r.events); err != nil {
			var pe *wsframe.ProtocolError
			if !errors.As(err, &pe) {
				r.code, r.reason = 1, "not a *ProtocolError: "+err.Error()
				return r
			}
			r.code, r.reason = pe.Code, pe.Reason
			return r
		}
		in = in[n:]
	}
	return r
}

func TestParser(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4096)
	tests := []struct {
		name   string
		max    int
		in     [][]byte
		events []string
		code   uint16
		reason string
	}{
		{name: "nothing", in: nil},
		{name: "text message is discarded", in: [][]byte{frame(fText, []byte("hello"))}},
		{name: "binary message is discarded", in: [][]byte{frame(fBin, []byte{0, 1, 2})}},
		{name: "empty text", in: [][]byte{frame(fText, nil)}},
		{name: "ping", in: [][]byte{frame(fPing, []byte("abc"))}, events: []string{`ping "abc"`}},
		{name: "empty ping", in: [][]byte{frame(fPing, nil)}, events: []string{`ping ""`}},
		{name: "ping of 125 bytes", in: [][]byte{frame(fPing, bytes.Repeat([]byte("p"), 125))},
			events: []string{fmt.Sprintf("ping %q", strings.Repeat("p", 125))}},
		{name: "pong", in: [][]byte{frame(fPong, []byte("x"))}, events: []string{"pong"}},
		{name: "close with status and reason", in: [][]byte{frame(fClose, closePayload(1000, "bye"))}, events: []string{`close 1000 "bye"`}},
		{name: "close without status", in: [][]byte{frame(fClose, nil)}, events: []string{`close 1005 ""`}},
		{name: "close with UTF-8 reason", in: [][]byte{frame(fClose, closePayload(4000, "adieu, é"))}, events: []string{`close 4000 "adieu, é"`}},
		{name: "fragmented message", in: [][]byte{frame(wsframe.OpText, []byte("a")), frame(wsframe.OpContinuation, []byte("b")), frame(fCont, []byte("c"))}},
		{name: "control frames inside a fragmented message", in: [][]byte{
			frame(wsframe.OpBinary, []byte("a")), frame(fPing, []byte("1")), frame(wsframe.OpContinuation, []byte("b")),
			frame(fPong, nil), frame(fCont, []byte("c")), frame(fPing, []byte("2")),
		}, events: []string{`ping "1"`, "pong", `ping "2"`}},
		{name: "message after a fragmented one", in: [][]byte{frame(wsframe.OpText, []byte("a")), frame(fCont, nil), frame(fText, []byte("b")), frame(fPing, nil)},
			events: []string{`ping ""`}},
		{name: "16-bit length", in: [][]byte{frame(fText, bytes.Repeat([]byte("y"), 300)), frame(fPing, []byte("after"))}, events: []string{`ping "after"`}},
		{name: "64-bit length", max: 1 << 20, in: [][]byte{frame(fBin, bytes.Repeat([]byte("z"), 70000)), frame(fPing, []byte("after"))}, events: []string{`ping "after"`}},
		{name: "message of exactly the limit", in: [][]byte{frame(fText, big), frame(fPing, nil)}, events: []string{`ping ""`}},
		{name: "fragments of exactly the limit", in: [][]byte{frame(wsframe.OpText, big[:4000]), frame(fCont, big[:96]), frame(fPing, nil)}, events: []string{`ping ""`}},
		{name: "limits apply per message", in: [][]byte{frame(fText, big), frame(fText, big), frame(fPing, nil)}, events: []string{`ping ""`}},

		{name: "message too big", in: [][]byte{frame(fText, append(big, 'x'))}, code: 1009, reason: "message too big"},
		{name: "message too big, declared only", in: [][]byte{frameLen(fBin, nil, 1<<40)}, code: 1009, reason: "message too big"},
		{name: "fragments too big", in: [][]byte{frame(wsframe.OpText, big[:4000]), frame(wsframe.OpContinuation, big[:96]), frame(fCont, []byte("x"))},
			code: 1009, reason: "message too big"},
		{name: "custom limit", max: 10, in: [][]byte{frame(fText, []byte("0123456789")), frame(fText, []byte("0123456789a"))}, code: 1009, reason: "message too big"},
		{name: "length with the top bit set", in: [][]byte{frameLen(fBin, nil, 1<<63)}, code: 1002, reason: "invalid frame length"},
		{name: "unmasked", in: [][]byte{unmasked(fText, []byte("hi"))}, code: 1002, reason: "client frame not masked"},
		{name: "unmasked ping", in: [][]byte{unmasked(fPing, nil)}, code: 1002, reason: "client frame not masked"},
		{name: "RSV1", in: [][]byte{frame(0x40|fText, []byte("x"))}, code: 1002, reason: "reserved bits set"},
		{name: "RSV2", in: [][]byte{frame(0x20|fText, []byte("x"))}, code: 1002, reason: "reserved bits set"},
		{name: "RSV3", in: [][]byte{frame(0x10|fPing, nil)}, code: 1002, reason: "reserved bits set"},
		{name: "continuation without a message", in: [][]byte{frame(fCont, []byte("x"))}, code: 1002, reason: "unexpected continuation frame"},
		{name: "text inside a fragmented message", in: [][]byte{frame(wsframe.OpText, []byte("a")), frame(fText, []byte("b"))},
			code: 1002, reason: "new message inside a fragmented one"},
		{name: "fragmented ping", in: [][]byte{frame(wsframe.OpPing, nil)}, code: 1002, reason: "fragmented control frame"},
		{name: "fragmented close", in: [][]byte{frame(wsframe.OpClose, nil)}, code: 1002, reason: "fragmented control frame"},
		{name: "ping of 126 bytes", in: [][]byte{frame(fPing, bytes.Repeat([]byte("p"), 126))}, code: 1002, reason: "control frame too long"},
		{name: "close with a one-byte payload", in: [][]byte{frame(fClose, []byte{3})}, code: 1002, reason: "invalid close payload"},
		{name: "close reason not UTF-8", in: [][]byte{frame(fClose, closePayload(1000, "\xff"))}, code: 1007, reason: "close reason not UTF-8"},
		{name: "events before an error are reported", in: [][]byte{frame(fPing, []byte("1")), unmasked(fPing, nil)},
			events: []string{`ping "1"`}, code: 1002, reason: "client frame not masked"},
	}
	for op := byte(3); op <= 0xF; op++ {
		if op >= 8 && op <= 0xA {
			continue
		}
		tests = append(tests, struct {
			name   string
			max    int
			in     [][]byte
			events []string
			code   uint16
			reason string
		}{name: fmt.Sprintf("opcode %#x", op), in: [][]byte{frame(fin|op, nil)}, code: 1002, reason: "unknown opcode"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := bytes.Join(tt.in, nil)
			// The outcome must not depend on how the input is split.
			for _, chunk := range []int{0, 1, 2, 3, 7, 13} {
				p := &wsframe.Parser{MaxMessage: tt.max}
				got := feed(p, in, chunk)
				if strings.Join(got.events, "\n") != strings.Join(tt.events, "\n") {
					t.Errorf("chunk %d: events\n%s\nwant\n%s", chunk, strings.Join(got.events, "\n"), strings.Join(tt.events, "\n"))
				}
				if got.code != tt.code || got.reason != tt.reason {
					t.Errorf("chunk %d: error %d %q, want %d %q", chunk, got.code, got.reason, tt.code, tt.reason)
				}
			}
		})
	}
}

// TestCloseCodes feeds a close frame with every code from 0 to 65535: the
// codes RFC 6455 §7.4 and IANA's registry allow a client are reported, every
// other one fails with 1002.
func TestCloseCodes(t *testing.T) {
	ranges := []struct {
		from, to uint16
		valid    bool
		why      string
	}{
		{0, 999, false, "not used (§7.4.2)"},
		{1000, 1003, true, "normal, going away, protocol error, unsupported data"},
		{1004, 1004, false, "reserved"},
		{1005, 1006, false, "no status, abnormal closure: never in a frame"},
		{1007, 1011, true, "invalid payload, policy, too big, extension, internal error"},
		{1012, 1014, true, "service restart, try again later, bad gateway (IANA registry)"},
		{1015, 1015, false, "TLS handshake failure: never in a frame"},
		{1016, 2999, false, "reserved for the protocol, unassigned"},
		{3000, 3999, true, "libraries and frameworks (IANA registration)"},
		{4000, 4999, true, "private use"},
		{5000, 65535, false, "outside the protocol"},
	}
	next := 0
	for _, r := range ranges {
		if int(r.from) != next {
			t.Fatalf("ranges skip from %d to %d", next, r.from)
		}
		next = int(r.to) + 1
		bad := 0
		for c := int(r.from); c <= int(r.to); c++ {
			code := uint16(c)
			var ev events
			err := new(wsframe.Parser).Feed(frame(fClose, closePayload(code, "r")), &ev)
			var pe *wsframe.ProtocolError
			ok := err == nil && len(ev) == 1 && ev[0] == fmt.Sprintf(`close %d "r"`, code)
			refused := errors.As(err, &pe) && pe.Code == wsframe.CloseProtocolError && pe.Reason == wsframe.ReasonInvalidCloseCode && len(ev) == 0
			if (r.valid && !ok) || (!r.valid && !refused) {
				if bad++; bad <= 3 {
					t.Errorf("close %d (%s): %v %q, want valid=%v", code, r.why, err, ev, r.valid)
				}
			}
		}
	}
	if next != 65536 {
		t.Fatalf("ranges end at %d", next-1)
	}
}

func TestPingPayloadIsUnmasked(t *testing.T) {
	// Every mask offset: payloads of every length up to the limit.
	for n := range 126 {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i*7 + n)
		}
		var ev events
		if err := new(wsframe.Parser).Feed(append(frame(fText, []byte("abc")), frame(fPing, payload)...), &ev); err != nil {
			t.Fatal(err)
		}
		if len(ev) != 1 || ev[0] != fmt.Sprintf("ping %q", payload) {
			t.Fatalf("length %d: %q", n, ev)
		}
	}
}

// TestPongPayloadSkipped: a pong's payload is neither kept nor checked,
// even inside a fragmented text message, and reading it allocates nothing
// (nor does a ping keep a buffer once it is handled: an idle client's
// parser holds none).
func TestPongPayloadSkipped(t *testing.T) {
	in := bytes.Join([][]byte{
		frame(wsframe.OpText, []byte("a")),
		frame(fPong, []byte("\xff\xfe not UTF-8")),
		frame(fPing, []byte("p")),
		frame(fCont, []byte("b")),
	}, nil)
	for _, chunk := range []int{0, 1, 3} {
		r := feed(new(wsframe.Parser), in, chunk)
		if r.code != 0 || len(r.events) != 2 || r.events[0] != "pong" || r.events[1] != `ping "p"` {
			t.Errorf("chunk %d: %q, error %d %q", chunk, r.events, r.code, r.reason)
		}
	}
	var p wsframe.Parser
	pong := frame(fPong, []byte("12345678"))
	var ev events
	if n := testing.AllocsPerRun(100, func() {
		if err := p.Feed(pong, &ev); err != nil {
			t.Fatal(err)
		}
		ev = ev[:0]
	}); n != 0 {
		t.Errorf("%.0f allocations per pong, want 0", n)
	}
}

func TestProtocolErrorMessage(t *testing.T) {
	err := &wsframe.ProtocolError{Code: 1002, Reason: "unknown opcode"}
	if got := err.Error(); got != "websocket protocol error 1002: unknown opcode" {
		t.Errorf("Error() = %q", got)
	}
}

// FuzzParser feeds arbitrary bytes, whole and split at an arbitrary point
// into chunks: the parser must never panic, and the split must not change
// what it reports.
func FuzzParser(f *testing.F) {
	f.Add(frame(fText, []byte("hello")), uint16(0), uint16(1), 4096)
	f.Add(append(frame(fPing, []byte("p")), frame(fClose, closePayload(1000, "bye"))...), uint16(3), uint16(2), 4096)
	f.Add(bytes.Join([][]byte{frame(wsframe.OpText, []byte("a")), frame(fPong, nil), frame(fCont, []byte("b"))}, nil), uint16(9), uint16(5), 10)
	f.Add(frameLen(fBin, nil, 1<<63), uint16(1), uint16(1), 4096)
	f.Add(unmasked(fText, []byte("x")), uint16(0), uint16(0), 0)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint16(4), uint16(3), 4096)
	f.Fuzz(func(t *testing.T, in []byte, split, chunk uint16, max int) {
		if max < 0 || max > 1<<20 {
			max = 4096
		}
		whole := feed(&wsframe.Parser{MaxMessage: max}, in, 0)
		// First split at one point, then in chunks.
		p := &wsframe.Parser{MaxMessage: max}
		s := min(int(split), len(in))
		first := feed(p, in[:s], 0)
		parts := first
		if first.code == 0 {
			rest := feed(p, in[s:], int(chunk))
			parts.events = append(parts.events, rest.events...)
			parts.code, parts.reason = rest.code, rest.reason
		}
		if strings.Join(whole.events, "\n") != strings.Join(parts.events, "\n") || whole.code != parts.code || whole.reason != parts.reason {
			t.Fatalf("whole: %q %d %q\nsplit at %d, chunks of %d: %q %d %q", whole.events, whole.code, whole.reason, s, chunk, parts.events, parts.code, parts.reason)
		}
		if whole.code != 0 && whole.code != 1002 && whole.code != 1007 && whole.code != 1009 {
			t.Fatalf("close code %d (%q)", whole.code, whole.reason)
		}
	})
}
