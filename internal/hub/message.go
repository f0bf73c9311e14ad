package hub

import (
	"sync/atomic"
	"time"
)

// Shape is the form in which a client receives records.
type Shape uint8

const (
	// ShapePlain is the record's JSON value (or one decoded Quix row) as is.
	ShapePlain Shape = iota
	// ShapeEnvelope wraps the value with topic, partition, offset,
	// timestamp, key and headers.
	ShapeEnvelope
	// ShapeSSEPlain is ShapePlain as a Server-Sent Event: the cursor as
	// its id, the plain value as its data.
	ShapeSSEPlain
	// ShapeSSEEnvelope is ShapeEnvelope as a Server-Sent Event.
	ShapeSSEEnvelope
	// NumShapes is the number of shapes.
	NumShapes
)

// String returns "plain", "envelope", "sse-plain" or "sse-envelope".
func (s Shape) String() string {
	switch s {
	case ShapePlain:
		return "plain"
	case ShapeEnvelope:
		return "envelope"
	case ShapeSSEPlain:
		return "sse-plain"
	case ShapeSSEEnvelope:
		return "sse-envelope"
	}
	return "unknown"
}

// Message is one unit of fan-out: one record, or one row of a record that
// decodes into several rows. Frames are complete WebSocket frames (header
// and payload), built once and written unchanged to every client that
// receives the message.
//
// A Message is immutable once published; the hub and every client share it.
type Message struct {
	// Key is the record's Kafka key; nil for a null key.
	Key []byte
	// Partition and Offset locate the record the message came from, so that
	// a client's position can be expressed as Kafka offsets.
	Partition int32
	Offset    int64
	// Row and Rows place the message among the messages of its record
	// (Quix rows): row Row (from 0) of Rows. Rows is 0 for a message that
	// is not a record's (a notice).
	Row, Rows int32
	// Cursor is the text form of the publish position just after this
	// message (wsdest.Cursor), "" when none was computed.
	Cursor string
	// Timestamp is the record's Kafka timestamp, for latency samples
	// (Config.ObserveLatency); zero when unknown.
	Timestamp time.Time
	// Frames holds the encoded frame for each shape, or nil where the
	// message cannot be delivered in that shape (for instance a non-JSON
	// value has no plain frame).
	Frames [NumShapes][]byte

	// deflated holds, per shape, the frame compressed for clients that
	// negotiated permessage-deflate: built by the first writer that needs
	// it and shared by the others; it points at the uncompressed frame
	// when that is below the threshold or does not shrink.
	deflated [NumShapes]atomic.Pointer[[]byte]
}
