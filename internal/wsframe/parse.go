package wsframe

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Handler receives the events a Parser finds in a client's byte stream.
// Data messages are discarded by the parser (wsdest is one-directional), so
// only control frames reach the handler; text messages are still checked
// to be UTF-8 (RFC 6455 §8.1), and one that is not fails with
// CloseInvalidPayload (1007) as soon as its bytes so far cannot become
// valid, without waiting for the rest of the message.
type Handler interface {
	// Ping is called for each ping frame; payload is only valid during the call.
	Ping(payload []byte)
	// Pong is called for each pong frame.
	Pong()
	// CloseFrame is called when the client sends a close frame. code is
	// CloseNoStatus when the frame carried no status.
	CloseFrame(code uint16, reason string)
}

// ProtocolError is returned by Parser.Feed when the client broke the
// protocol or a limit; Code is the close status to answer with.
type ProtocolError struct {
	Code   uint16
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket protocol error %d: %s", e.Code, e.Reason)
}

// Parser is an incremental parser of client-to-server frames. It keeps no
// reference to the bytes it is fed, so one read buffer can serve many
// connections. Its state is 64 bytes: the payload of a ping or close frame
// is held only while that frame is read, and a pong's is skipped.
//
// A Parser is not safe for concurrent use.
type Parser struct {
	// MaxMessage is the largest data message (sum of its fragments) a client
	// may send; larger ones fail with CloseMessageTooBig. Zero means
	// DefaultMaxMessage.
	MaxMessage int
	// Deflate accepts RSV1 on the first frame of a data message: the
	// client negotiated permessage-deflate.
	Deflate bool

	hdr     [14]byte // partial header bytes
	hdrN    uint8
	inFrame bool // header parsed, payload pending
	op      byte
	fin     bool
	mask    [4]byte
	maskPos uint8
	remain  uint64  // payload bytes still to come in this frame
	msgLen  uint64  // bytes of the current data message so far
	inMsg   bool    // a fragmented data message is open
	text    bool    // the open data message is a text message
	partial [3]byte // bytes of a UTF-8 sequence cut by a fragment or read boundary
	partN   uint8
	ctlN    uint8
	// ctl holds the payload of the ping or close frame being read:
	// allocated at its header, dropped once it is handled, so that an idle
	// client's parser holds no buffer.
	ctl *[MaxControlPayload]byte
}

// DefaultMaxMessage is the default Parser.MaxMessage: the largest message
// a client may send, in bytes.
const DefaultMaxMessage = 4096

// ctlPayload returns the payload of the control frame just read.
func (p *Parser) ctlPayload() []byte {
	if p.ctl == nil {
		return nil
	}
	return p.ctl[:p.ctlN]
}

func (p *Parser) maxMessage() uint64 {
	if p.MaxMessage <= 0 {
		return DefaultMaxMessage
	}
	return uint64(p.MaxMessage)
}

// Feed parses b and calls h for the control frames it completes. It returns
// a *ProtocolError when the stream is invalid; the parser must not be used
// after an error.
func (p *Parser) Feed(b []byte, h Handler) error {
	for len(b) > 0 {
		if !p.inFrame {
			n, err := p.readHeader(b)
			if err != nil {
				return err
			}
			b = b[n:]
			if !p.inFrame {
				return nil // need more header bytes
			}
			if p.remain == 0 {
				if err := p.endFrame(h); err != nil {
					return err
				}
			}
			continue
		}
		n := uint64(len(b))
		if n > p.remain {
			n = p.remain
		}
		chunk := b[:n]
		switch {
		case p.ctl != nil:
			for _, c := range chunk {
				p.ctl[p.ctlN] = c ^ p.mask[p.maskPos&3]
				p.ctlN++
				p.maskPos++
			}
		case p.text && !isControl(p.op):
			if !p.checkText(chunk) {
				return &ProtocolError{CloseInvalidPayload, ReasonInvalidUTF8}
			}
		default: // a pong's or a data frame's payload is discarded
			p.maskPos = uint8((uint64(p.maskPos) + n) & 3)
		}
		p.remain -= n
		b = b[n:]
		if p.remain == 0 {
			if err := p.endFrame(h); err != nil {
				return err
			}
		}
	}
	return nil
}

func isControl(op byte) bool { return op&0x8 != 0 }

// readHeader consumes header bytes from b, returning how many it used. It
// sets p.inFrame once the whole header is known.
func (p *Parser) readHeader(b []byte) (int, error) {
	used := 0
	need := 2
	for {
		if int(p.hdrN) >= 2 {
			need = 2 + 4
			switch p.hdr[1] & 0x7F {
			case 126:
				need += 2
			case 127:
				need += 8
			}
		}
		if int(p.hdrN) >= need {
			break
		}
		if used == len(b) {
			return used, nil
		}
		p.hdr[p.hdrN] = b[used]
		p.hdrN++
		used++
		if p.hdrN == 2 {
			if err := p.checkFirstBytes(); err != nil {
				return used, err
			}
		}
	}
	h := p.hdr[:p.hdrN]
	var length uint64
	off := 2
	switch h[1] & 0x7F {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:]))
		off = 4
	case 127:
		length = binary.BigEndian.Uint64(h[2:])
		off = 10
		if length>>63 != 0 {
			return used, &ProtocolError{CloseProtocolError, ReasonInvalidFrameLength}
		}
	default:
		length = uint64(h[1] & 0x7F)
	}
	copy(p.mask[:], h[off:off+4])
	p.hdrN = 0
	p.maskPos = 0
	p.remain = length
	p.inFrame = true
	if isControl(p.op) {
		if length > MaxControlPayload {
			return used, &ProtocolError{CloseProtocolError, ReasonControlTooLong}
		}
		p.ctlN = 0
		if length > 0 && p.op != OpPong {
			p.ctl = new([MaxControlPayload]byte)
		}
		return used, nil
	}
	p.msgLen += length
	if p.msgLen > p.maxMessage() {
		return used, &ProtocolError{CloseMessageTooBig, ReasonMessageTooBig}
	}
	return used, nil
}

func (p *Parser) checkFirstBytes() error {
	b0, b1 := p.hdr[0], p.hdr[1]
	if rsv := b0 & 0x70; rsv != 0 {
		// permessage-deflate (RFC 7692) sets RSV1 on the first frame of a
		// compressed data message; the payload is discarded anyway.
		op := b0 & 0x0F
		if !p.Deflate || rsv != 0x40 || (op != OpText && op != OpBinary) {
			return &ProtocolError{CloseProtocolError, ReasonReservedBits}
		}
	}
	if b1&0x80 == 0 {
		return &ProtocolError{CloseProtocolError, ReasonNotMasked}
	}
	p.op = b0 & 0x0F
	p.fin = b0&0x80 != 0
	switch p.op {
	case OpContinuation:
		if !p.inMsg {
			return &ProtocolError{CloseProtocolError, ReasonUnexpectedContinuation}
		}
	case OpText, OpBinary:
		if p.inMsg {
			return &ProtocolError{CloseProtocolError, ReasonNewMessageInFragmented}
		}
		p.msgLen = 0
		// A compressed text message (RSV1) is not checked for UTF-8: its
		// payload is discarded without being inflated.
		p.text, p.partN = p.op == OpText && b0&0x40 == 0, 0
	case OpClose, OpPing, OpPong:
		if !p.fin {
			return &ProtocolError{CloseProtocolError, ReasonFragmentedControl}
		}
	default:
		return &ProtocolError{CloseProtocolError, ReasonUnknownOpcode}
	}
	return nil
}

func (p *Parser) endFrame(h Handler) error {
	p.inFrame = false
	payload := p.ctlPayload()
	p.ctl = nil
	switch p.op {
	case OpPing:
		h.Ping(payload)
	case OpPong:
		h.Pong()
	case OpClose:
		switch {
		case len(payload) == 0:
			h.CloseFrame(CloseNoStatus, "")
		case len(payload) == 1:
			return &ProtocolError{CloseProtocolError, ReasonInvalidClosePayload}
		default:
			code := binary.BigEndian.Uint16(payload)
			reason := payload[2:]
			if !validCloseCode(code) {
				return &ProtocolError{CloseProtocolError, ReasonInvalidCloseCode}
			}
			if !utf8.Valid(reason) {
				return &ProtocolError{CloseInvalidPayload, ReasonCloseReasonNotUTF8}
			}
			h.CloseFrame(code, string(reason))
		}
	default: // data frames are discarded
		p.inMsg = !p.fin
		if p.fin && p.text && p.partN > 0 {
			return &ProtocolError{CloseInvalidPayload, ReasonInvalidUTF8}
		}
	}
	return nil
}

// checkText unmasks chunk (a piece of a text message's payload) into a
// small buffer and checks that it continues valid UTF-8. A sequence cut at
// the end is kept in p.partial and completed by the next chunk, if it can
// still become valid; if not, the check fails at once.
func (p *Parser) checkText(chunk []byte) bool {
	var buf [256 + 3]byte
	for len(chunk) > 0 {
		n := copy(buf[:], p.partial[:p.partN])
		m := min(len(chunk), 256)
		for i, c := range chunk[:m] {
			buf[n+i] = c ^ p.mask[p.maskPos&3]
			p.maskPos++
		}
		chunk = chunk[m:]
		b := buf[:n+m]
		// Keep back a trailing sequence that is still incomplete.
		cut := len(b)
		for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
			if c := b[i]; c&0xC0 != 0x80 {
				if c >= 0xC0 && seqLen(c) > len(b)-i {
					cut = i
				}
				break
			}
		}
		if !utf8.Valid(b[:cut]) || (cut < len(b) && !validPrefix(b[cut:])) {
			return false
		}
		p.partN = uint8(copy(p.partial[:], b[cut:]))
	}
	return true
}

// validPrefix reports whether b, the start of a UTF-8 sequence cut short,
// can still become a valid one (RFC 3629 §4): a lead byte of C2-F4, and
// each next byte in the range that lead allows. An invalid text message
// then fails as soon as its prefix cannot become valid (RFC 6455 §8.1),
// not when the message ends.
func validPrefix(b []byte) bool {
	lo, hi := byte(0x80), byte(0xBF)
	switch c := b[0]; {
	case c < 0xC2 || c > 0xF4:
		return false
	case c == 0xE0:
		lo = 0xA0 // overlong below
	case c == 0xED:
		hi = 0x9F // surrogates above
	case c == 0xF0:
		lo = 0x90 // overlong below
	case c == 0xF4:
		hi = 0x8F // above U+10FFFF
	}
	for _, c := range b[1:] {
		if c < lo || c > hi {
			return false
		}
		lo, hi = 0x80, 0xBF
	}
	return true
}

// seqLen is the length of the UTF-8 sequence that lead byte c starts
// (4 for invalid leads above 0xF4, which validPrefix then rejects).
func seqLen(c byte) int {
	switch {
	case c >= 0xF0:
		return 4
	case c >= 0xE0:
		return 3
	}
	return 2
}

// validCloseCode reports whether a client may send close code c (RFC 6455
// §7.4): the codes of §7.4.1 and IANA's WebSocket Close Code Number
// registry (1012 service restart, 1013 try again later, 1014 bad gateway),
// and the ranges for libraries, frameworks and applications (3000-4999).
// 1004 is reserved; 1005, 1006 and 1015 must never be sent in a frame; the
// rest of 0-2999 is unassigned, and above 4999 is outside the protocol.
func validCloseCode(c uint16) bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014, c >= 3000 && c <= 4999:
		return true
	}
	return false
}
