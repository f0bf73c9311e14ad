// Package message is the vocabulary that the encoder, the history, the
// server and the hub share: the Message, one unit of fan-out with its
// frames built once per Shape, and the Origin its cursor comes from. It
// knows nothing of Kafka, HTTP or routing, so that each of those packages
// can use it without importing the others.
package message

import (
	"sync/atomic"
	"time"

	"github.com/wsdest/wsdest"
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
// The rows of a record are one allocation (a slice of Messages) and share
// their key, their Origin and the buffer of each shape's frames: a record
// of many rows costs unsafe.Sizeof(Message{}) a row beside its frames.
type Message struct {
	// Key is the record's Kafka key; nil for a null key.
	Key []byte
	// Offset and Partition locate the record the message came from, so
	// that a client's position can be expressed as Kafka offsets.
	Offset    int64
	Partition int32
	// Row and Rows place the message among the messages of its record
	// (Quix rows): row Row (from 0) of Rows. Rows is 0 for a message that
	// is not a record's (a notice).
	Row, Rows int32
	// Timestamp is the record's Kafka timestamp in milliseconds since the
	// epoch (Kafka's own unit), 0 when unknown; Time returns it as a
	// time.Time. It is used for latency samples (Config.ObserveLatency)
	// and to merge partitions by time.
	Timestamp int64
	// Origin is what the messages of one record share beside the fields
	// above: where their cursors come from and the head of their
	// envelope; nil when there is neither (a notice, or a message encoded
	// without a position).
	Origin *Origin
	// Frames holds the encoded frame for each shape, or nil where the
	// message cannot be delivered in that shape (for instance a non-JSON
	// value has no plain frame) or was built without it.
	Frames [NumShapes][]byte

	// deflated holds, per shape, the frame compressed for clients that
	// negotiated permessage-deflate (Deflated): allocated by the first
	// writer that needs one, nil until then, so that messages no such
	// client receives do not carry it.
	deflated atomic.Pointer[deflatedFrames]
}

// Origin is what the messages of one record share beside their key and
// place: their cursors, and the head of their envelope. The encoder builds
// it; it is immutable once published.
type Origin struct {
	// Cursor is the text form of the publish position just after the
	// record's one message (wsdest.Cursor); "" when Before is set, or none
	// was computed.
	Cursor string
	// Before, for a record decoded into rows, is the publish position
	// before the record: row r's cursor is Before advanced past row r,
	// computed when asked for (Message.Cursor), so that rows carry no
	// cursor text of their own. nil otherwise. Do not modify it.
	Before *wsdest.Cursor
	// Head, when not "", is the beginning of the record's envelope (the
	// encoder's business: everything before the value), kept for messages
	// built with their plain frame but without their envelope frames, so
	// that those can be built later from the two (the history keeps
	// messages so).
	Head string
}

// Cursor returns the text form of the publish position just after m
// (wsdest.Cursor), "" when none was computed. A row's is computed, and
// allocated, on each call.
func (m *Message) Cursor() string {
	o := m.Origin
	switch {
	case o == nil:
		return ""
	case o.Before == nil:
		return o.Cursor
	}
	c, _ := m.Position()
	return c.String()
}

// Position returns the publish position just after m, and false when m has
// none (see Cursor).
func (m *Message) Position() (wsdest.Cursor, bool) {
	o := m.Origin
	switch {
	case o == nil:
		return wsdest.Cursor{}, false
	case o.Before == nil:
		c, err := wsdest.ParseCursor(o.Cursor)
		return c, err == nil
	}
	c := o.Before.Clone()
	c.Advance(m.Partition, m.Offset, m.Row, m.Rows)
	return c, true
}

// Head returns the head of m's envelope (Origin.Head), "" when m has none.
func (m *Message) Head() string {
	if m.Origin == nil {
		return ""
	}
	return m.Origin.Head
}

// deflatedFrames holds, per shape, a message's frame compressed for
// permessage-deflate: built by the first writer that needs it and shared
// by the others; it points at the uncompressed frame when that is below
// the threshold or does not shrink.
type deflatedFrames [NumShapes]atomic.Pointer[[]byte]

// Deflated returns m's frame of shape s compressed for permessage-deflate:
// deflate(m.Frames[s]) computed by whichever caller comes first, then
// shared by every later one; built reports whether this call's result is
// the one kept (a caller that lost the race gets the winner's bytes and
// false). deflate returns its input when compressing does not pay. Safe
// for concurrent use.
func (m *Message) Deflated(s Shape, deflate func(frame []byte) []byte) (frame []byte, built bool) {
	d := m.deflated.Load()
	if d == nil {
		d = new(deflatedFrames)
		if !m.deflated.CompareAndSwap(nil, d) {
			d = m.deflated.Load() // another writer was first
		}
	}
	if p := d[s].Load(); p != nil {
		return *p, false
	}
	out := deflate(m.Frames[s])
	if !d[s].CompareAndSwap(nil, &out) {
		return *d[s].Load(), false // another writer was first; its bytes win
	}
	return out, true
}

// Notice reports whether m is a notice (encode.Notice): a message of no
// record and no partition, for every client that has a frame for it.
func (m *Message) Notice() bool { return m.Rows == 0 && m.Partition < 0 }

// Time returns Timestamp as a time.Time, the zero Time when unknown.
func (m *Message) Time() time.Time {
	if m.Timestamp == 0 {
		return time.Time{}
	}
	return time.UnixMilli(m.Timestamp)
}

// UnixMilli returns t as a Message.Timestamp: milliseconds since the
// epoch, 0 for the zero Time.
func UnixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
