package wsframe_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wsdest/wsdest/internal/wsframe"
)

// TestTextUTF8 feeds text messages whole, in fragments cut at every byte,
// and a byte at a time, and expects 1007 exactly for those that are not
// UTF-8 (RFC 6455 §8.1). Binary messages are never checked.
func TestTextUTF8(t *testing.T) {
	long := strings.Repeat("température ✓ 𝄞 ", 40) // > 256 bytes: several checkText rounds
	tests := []struct {
		name    string
		payload string
		valid   bool
	}{
		{"ascii", "hello", true},
		{"empty", "", true},
		{"two three four bytes", "é✓𝄞", true},
		{"long multibyte", long, true},
		{"bad lead", "a\xffb", false},
		{"lone continuation", "a\x80", false},
		{"overlong", "\xc0\xaf", false},
		{"surrogate", "\xed\xa0\x80", false},
		{"above U+10FFFF", "\xf4\x90\x80\x80", false},
		{"truncated at the end", "ab\xe2\x9c", false},
		{"truncated in the middle", "a\xe2\x9cb", false},
		{"bad after long valid", long + "\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, err error) {
				t.Helper()
				var pe *wsframe.ProtocolError
				switch {
				case tt.valid && err != nil:
					t.Errorf("%s: %v, want no error", how, err)
				case !tt.valid && (!errors.As(err, &pe) || pe.Code != wsframe.CloseInvalidPayload):
					t.Errorf("%s: %v, want close 1007", how, err)
				}
			}
			msg := []byte(tt.payload)
			var p wsframe.Parser
			p.MaxMessage = 1 << 20
			check("one frame", p.Feed(frame(fText, msg), &events{}))

			// The same message in two fragments, split at every byte, with
			// a ping between them.
			for cut := 0; cut <= len(msg) && cut < 20; cut++ {
				var p wsframe.Parser
				p.MaxMessage = 1 << 20
				var all []byte
				all = append(all, frame(wsframe.OpText, msg[:cut])...)
				all = append(all, frame(fin|wsframe.OpPing, []byte("x"))...)
				all = append(all, frame(fin|wsframe.OpContinuation, msg[cut:])...)
				check("fragments", p.Feed(all, &events{}))
			}

			// One byte per read.
			var q wsframe.Parser
			q.MaxMessage = 1 << 20
			var err error
			for _, b := range frame(fText, msg) {
				if err = q.Feed([]byte{b}, &events{}); err != nil {
					break
				}
			}
			check("byte by byte", err)

			var b wsframe.Parser
			b.MaxMessage = 1 << 20
			if err := b.Feed(frame(fBin, msg), &events{}); err != nil {
				t.Errorf("binary: %v", err)
			}
		})
	}
}

// TestCompressedTextNotChecked: with permessage-deflate, a text message
// with RSV1 carries compressed bytes, which are rarely UTF-8; the parser
// discards it without inflating, so it must not close the client with 1007
// for them, while the same bytes uncompressed still do.
func TestCompressedTextNotChecked(t *testing.T) {
	compressed := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00} // "Hello", flate, no tail
	p := wsframe.Parser{Deflate: true}
	if err := p.Feed(frame(0x40|fText, compressed), &events{}); err != nil {
		t.Errorf("compressed text: %v, want no error", err)
	}
	p = wsframe.Parser{Deflate: true}
	var pe *wsframe.ProtocolError
	if err := p.Feed(frame(fText, compressed), &events{}); !errors.As(err, &pe) || pe.Code != wsframe.CloseInvalidPayload {
		t.Errorf("the same bytes uncompressed: %v, want close 1007", err)
	}
}

// TestTextUTF8FailsAtOnce: a text message fails as soon as its bytes so far
// cannot begin valid UTF-8, in the fragment that makes it so, not when the
// message ends (RFC 6455 §8.1; Autobahn 6.4.x "strict"); a prefix that can
// still become valid is kept. No fragment here is final, so an error can
// only come from the bytes already seen. Each fragment is fed whole and a
// byte at a time.
func TestTextUTF8FailsAtOnce(t *testing.T) {
	tests := []struct {
		name   string
		frags  []string
		failAt int // the fragment whose bytes must fail; -1 = none
	}{
		{"above U+10FFFF", []string{"a\xf4\x90"}, 0},
		{"above U+10FFFF across fragments", []string{"a\xf4", "\x90"}, 1},
		{"surrogate", []string{"\xed\xa0"}, 0},
		{"surrogate across fragments", []string{"ok \xed", "\xa0"}, 1},
		{"lone C0", []string{"a\xc0"}, 0},
		{"lone C1", []string{"\xc1"}, 0},
		{"F5", []string{"a\xf5"}, 0},
		{"FF", []string{"\xff"}, 0},
		{"FF after valid fragments", []string{"κόσμε", "\xff"}, 1},
		{"overlong three bytes", []string{"\xe0", "\x80"}, 1},
		{"overlong four bytes", []string{"\xf0\x8f"}, 0},
		{"bad third byte", []string{"\xf0\x90", "\x41"}, 1},
		{"bad fourth byte", []string{"\xf3\x80\x80", "\xc0"}, 1},
		{"valid U+10FFFF prefix", []string{"a\xf4\x8f"}, -1},
		{"valid U+10FFFF prefix across fragments", []string{"\xf4", "\x8f\xbf"}, -1},
		{"valid E0 prefix", []string{"\xe0\xa0"}, -1},
		{"valid ED prefix", []string{"\xed\x9f"}, -1},
		{"valid F0 prefix", []string{"\xf0\x90\x80"}, -1},
		{"valid C2 prefix", []string{"\xc2"}, -1},
		{"completed across fragments", []string{"\xf0\x9d", "\x84\x9e", " ok \xe2"}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, bytewise := range []bool{false, true} {
				p := wsframe.Parser{MaxMessage: 1 << 20}
				failed := -1
			frags:
				for i, s := range tt.frags {
					op := wsframe.OpContinuation
					if i == 0 {
						op = wsframe.OpText
					}
					f := frame(op, []byte(s)) // FIN clear
					step := len(f)
					if bytewise {
						step = 1
					}
					for ; len(f) > 0; f = f[step:] {
						if err := p.Feed(f[:step], &events{}); err != nil {
							var pe *wsframe.ProtocolError
							if !errors.As(err, &pe) || pe.Code != wsframe.CloseInvalidPayload {
								t.Fatalf("fragment %d: %v, want close 1007", i, err)
							}
							failed = i
							break frags
						}
					}
				}
				if failed != tt.failAt {
					t.Errorf("byte by byte %v: failed in fragment %d, want %d", bytewise, failed, tt.failAt)
				}
			}
		})
	}
}
