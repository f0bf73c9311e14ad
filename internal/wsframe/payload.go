package wsframe

import "encoding/binary"

// TextPayload returns the payload of f, a complete unmasked text frame as
// Text builds it, and whether f is one.
func TextPayload(f []byte) ([]byte, bool) {
	if len(f) < 2 || f[0] != 0x80|OpText || f[1]&0x80 != 0 {
		return nil, false
	}
	n, h := uint64(f[1]), 2
	switch n {
	case 126:
		if len(f) < 4 {
			return nil, false
		}
		n, h = uint64(binary.BigEndian.Uint16(f[2:4])), 4
	case 127:
		if len(f) < 10 {
			return nil, false
		}
		n, h = binary.BigEndian.Uint64(f[2:10]), 10
	}
	if uint64(len(f)-h) != n {
		return nil, false
	}
	return f[h:], true
}
