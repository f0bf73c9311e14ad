package encode

import (
	"bytes"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/sseframe"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// Value returns m's JSON value (or Quix row): its plain frame's payload,
// and false when m has no plain frame (its value is not JSON, or the
// message was built without one).
func Value(m *message.Message) ([]byte, bool) {
	return wsframe.TextPayload(m.Frames[message.ShapePlain])
}

// Head returns the head of m's envelope, everything before its value
// (`{"topic":...,"headers":{...},"value":`): the one the history keeps
// (message.Origin.Head), else cut from m's envelope frame, which needs
// the value's length, so m's plain frame. False when m has neither.
func Head(m *message.Message) ([]byte, bool) {
	if h := m.Head(); h != "" {
		return []byte(h), true
	}
	value, ok := Value(m)
	if !ok {
		return nil, false
	}
	payload, ok := wsframe.TextPayload(m.Frames[message.ShapeEnvelope])
	if !ok {
		return nil, false
	}
	cursor := m.Cursor()
	n := len(payload) - envTailLen(cursor) - len(value)
	if n <= 0 || !bytes.Equal(payload[n:n+len(value)], value) {
		return nil, false
	}
	return payload[:n], true
}

// Derive returns a message for the same record as m (sharing its key,
// place, timestamp and Origin) whose value is value, JSON the caller
// built (a projection of m's), framed for shape with m's cursor: its
// plain frame, whose payload is value, and the frame of shape, built from
// head (Head) for the envelope shapes; for ShapeSSEEnvelope also the
// envelope frame, so that Reframe can build the message again for another
// cursor as it does from the history's. It returns nil when shape is an
// envelope shape and head is nil.
func Derive(m *message.Message, shape message.Shape, head, value []byte) *message.Message {
	envelope := shape == message.ShapeEnvelope || shape == message.ShapeSSEEnvelope
	if envelope && head == nil {
		return nil
	}
	d := &message.Message{Key: m.Key, Offset: m.Offset, Partition: m.Partition, Row: m.Row, Rows: m.Rows,
		Timestamp: m.Timestamp, Origin: m.Origin}
	d.Frames[message.ShapePlain] = wsframe.Text(value)
	var cursor string
	if shape != message.ShapePlain {
		cursor = m.Cursor()
	}
	switch shape {
	case message.ShapeSSEPlain:
		d.Frames[shape] = sseframe.Event(cursor, value)
	case message.ShapeEnvelope, message.ShapeSSEEnvelope:
		n := len(head) + len(value) + envTailLen(cursor)
		env := wsframe.TextFunc(n, func(p []byte) {
			i := copy(p, head)
			i += copy(p[i:], value)
			envTail(p[i:i], cursor)
		})
		d.Frames[message.ShapeEnvelope] = env
		if shape == message.ShapeSSEEnvelope {
			payload, _ := wsframe.TextPayload(env)
			d.Frames[shape] = sseframe.Event(cursor, payload)
		}
	}
	return d
}
