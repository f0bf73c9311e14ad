// Package wsframe builds the WebSocket frames the server sends and parses the
// frames clients send (RFC 6455), with permessage-deflate (RFC 7692, no
// context takeover) as the one extension: Deflater compresses a server
// frame's payload once for every client that negotiated it, and the Parser
// accepts RSV1 on a compressed client message, which it discards without
// inflating. Text messages from clients are checked to be UTF-8 (1007
// otherwise), except compressed ones.
//
// Server frames are never masked, so one encoded frame (header and payload in
// a single slice) can be written to any number of connections unchanged:
// the fan-out path builds each frame once and shares the bytes.
package wsframe

import "encoding/binary"

// Opcodes (RFC 6455 section 5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Close status codes used by wsdest (RFC 6455 section 7.4.1).
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseNoStatus        uint16 = 1005 // never sent on the wire
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseMessageTooBig   uint16 = 1009
	CloseInternalError   uint16 = 1011
)

// MaxControlPayload is the largest payload a control frame may carry.
const MaxControlPayload = 125

// HeaderLen returns the length of an unmasked frame header for a payload of
// n bytes.
func HeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	default:
		return 10
	}
}

// AppendHeader appends an unmasked, final frame header with opcode op for a
// payload of n bytes.
func AppendHeader(dst []byte, op byte, n int) []byte {
	b0 := 0x80 | op
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// Text returns a complete text frame carrying payload, in one allocation of
// exactly the frame's size.
func Text(payload []byte) []byte {
	f := make([]byte, 0, HeaderLen(len(payload))+len(payload))
	f = AppendHeader(f, OpText, len(payload))
	return append(f, payload...)
}

// TextFunc returns a complete text frame whose payload of exactly n bytes is
// written by fill into the slice it is given. It lets an encoder write the
// payload straight into the frame without an intermediate copy.
func TextFunc(n int, fill func(p []byte)) []byte {
	h := HeaderLen(n)
	f := make([]byte, h+n)
	AppendHeader(f[:0], OpText, n)
	fill(f[h:])
	return f
}

// Close returns a close frame with the given status code and reason. The
// reason is cut to fit the 125-byte control payload limit.
func Close(code uint16, reason string) []byte {
	if len(reason) > MaxControlPayload-2 {
		reason = reason[:MaxControlPayload-2]
	}
	f := AppendHeader(make([]byte, 0, 4+len(reason)), OpClose, 2+len(reason))
	f = binary.BigEndian.AppendUint16(f, code)
	return append(f, reason...)
}

// Control returns a ping or pong frame with the given payload (at most 125
// bytes; longer payloads are cut).
func Control(op byte, payload []byte) []byte {
	if len(payload) > MaxControlPayload {
		payload = payload[:MaxControlPayload]
	}
	f := AppendHeader(make([]byte, 0, 2+len(payload)), op, len(payload))
	return append(f, payload...)
}
