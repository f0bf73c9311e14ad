package bench

import (
	"encoding/binary"
	"errors"

	"github.com/wsdest/wsdest/internal/wsframe"
)

// MaxFrame is the largest server frame the client accepts; larger ones end
// the connection. It bounds the read buffer a client may grow to.
const MaxFrame = 16 << 20

// Frame is one server-to-client frame. Payload aliases the buffer the frame
// was parsed from.
type Frame struct {
	Fin bool
	Op  byte
	// Compressed is RSV1 on a data frame: a permessage-deflate message.
	Compressed bool
	Payload    []byte
}

// Errors ParseFrame returns for streams a conforming server never sends.
var (
	ErrMaskedFrame   = errors.New("bench: server frame is masked")
	ErrReservedBits  = errors.New("bench: reserved bits set in frame")
	ErrBadControl    = errors.New("bench: control frame fragmented or longer than 125 bytes")
	ErrFrameTooLarge = errors.New("bench: frame larger than MaxFrame")
	ErrBadOpcode     = errors.New("bench: unknown opcode")
)

// ParseFrame parses the server frame at the start of b without copying.
// size is the frame's length on the wire; when size > len(b) the frame is
// not complete yet, f is zero, and size is the least number of bytes needed
// (exact once the header is complete).
func ParseFrame(b []byte) (f Frame, size int, err error) {
	if len(b) < 2 {
		return Frame{}, 2, nil
	}
	b0, b1 := b[0], b[1]
	if b1&0x80 != 0 {
		return Frame{}, 0, ErrMaskedFrame
	}
	if rsv := b0 & 0x70; rsv != 0 {
		if op := b0 & 0x0F; rsv != 0x40 || op != wsframe.OpText && op != wsframe.OpBinary {
			return Frame{}, 0, ErrReservedBits
		}
		f.Compressed = true
	}
	f.Fin = b0&0x80 != 0
	f.Op = b0 & 0x0F
	switch f.Op {
	case wsframe.OpContinuation, wsframe.OpText, wsframe.OpBinary:
	case wsframe.OpClose, wsframe.OpPing, wsframe.OpPong:
		if !f.Fin || b1&0x7F > 125 {
			return Frame{}, 0, ErrBadControl
		}
	default:
		return Frame{}, 0, ErrBadOpcode
	}
	hdr := 2
	var n uint64
	switch l := b1 & 0x7F; l {
	case 126:
		hdr = 4
		if len(b) < hdr {
			return Frame{}, hdr, nil
		}
		n = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		hdr = 10
		if len(b) < hdr {
			return Frame{}, hdr, nil
		}
		n = binary.BigEndian.Uint64(b[2:])
	default:
		n = uint64(l)
	}
	if n > MaxFrame {
		return Frame{}, 0, ErrFrameTooLarge
	}
	size = hdr + int(n)
	if len(b) < size {
		return Frame{}, size, nil
	}
	f.Payload = b[hdr:size]
	return f, size, nil
}

// AppendClientFrame appends a final client frame with opcode op, masked with
// key as RFC 6455 requires of clients. Only control frames are ever sent, so
// payload is at most 125 bytes; longer payloads are cut.
func AppendClientFrame(dst []byte, op byte, payload []byte, key [4]byte) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	dst = append(dst, 0x80|op, 0x80|byte(len(payload)))
	dst = append(dst, key[:]...)
	for i, c := range payload {
		dst = append(dst, c^key[i&3])
	}
	return dst
}
