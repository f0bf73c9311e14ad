package encode

import (
	"bytes"
	"strconv"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/sseframe"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// The envelope's "cursor" member is its last one, so that a message can be
// re-framed with another cursor (Reframe) by cutting its tail:
//
//	{"topic":...,"value":<value>,"cursor":"AQ..."}
//
// An SSE event carries the same cursor as its id. Plain WebSocket frames
// carry no cursor.
const cursorKey = `,"cursor":"`

// wantsEnvelope reports whether any envelope frame is wanted.
func wantsEnvelope(want [hub.NumShapes]bool) bool {
	return want[hub.ShapeEnvelope] || want[hub.ShapeSSEEnvelope]
}

// frames advances pos past m, stamps m with its cursor and builds m's
// frames for the wanted shapes: plain from plain (nil: the value has no
// plain form), envelope from s.env (the envelope's head, and for a value
// that is not JSON the value already) followed by value.
func (e *Encoder) frames(m *hub.Message, plain, value []byte, want [hub.NumShapes]bool, s *scratch, pos *wsdest.Cursor) {
	if pos != nil {
		pos.Advance(m.Partition, m.Offset, m.Row, m.Rows)
		s.cur = pos.AppendText(s.cur[:0])
		m.Cursor = string(s.cur)
	}
	if plain != nil {
		if want[hub.ShapePlain] {
			m.Frames[hub.ShapePlain] = wsframe.Text(plain)
		}
		if want[hub.ShapeSSEPlain] {
			m.Frames[hub.ShapeSSEPlain] = sseframe.Event(m.Cursor, plain)
		}
	}
	if !wantsEnvelope(want) {
		return
	}
	tailLen := 1
	if m.Cursor != "" {
		tailLen += len(cursorKey) + len(m.Cursor) + 1
	}
	n := len(s.env) + len(value) + tailLen
	fill := func(p []byte) {
		i := copy(p, s.env)
		i += copy(p[i:], value)
		if m.Cursor != "" {
			i += copy(p[i:], cursorKey)
			i += copy(p[i:], m.Cursor)
			p[i] = '"'
			i++
		}
		p[i] = '}'
	}
	if want[hub.ShapeEnvelope] {
		m.Frames[hub.ShapeEnvelope] = wsframe.TextFunc(n, fill)
	}
	if want[hub.ShapeSSEEnvelope] {
		s.tmp = append(s.tmp[:0], make([]byte, n)...)
		fill(s.tmp)
		m.Frames[hub.ShapeSSEEnvelope] = sseframe.Event(m.Cursor, s.tmp)
	}
}

// setCursors advances pos past each of msgs (the rows of one record) and
// stamps each with its cursor; the texts share one string. pos nil leaves
// them without.
func setCursors(msgs []hub.Message, pos *wsdest.Cursor, s *scratch) {
	if pos == nil {
		return
	}
	s.cur = s.cur[:0]
	ends := make([]int, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		pos.Advance(m.Partition, m.Offset, m.Row, m.Rows)
		s.cur = pos.AppendText(s.cur)
		ends[i] = len(s.cur)
	}
	all := string(s.cur)
	from := 0
	for i := range msgs {
		msgs[i].Cursor = all[from:ends[i]]
		from = ends[i]
	}
}

// envTail appends the end of an envelope after its value: the cursor
// member, if any, and the closing brace.
func envTail(b []byte, cursor string) []byte {
	if cursor != "" {
		b = append(b, cursorKey...)
		b = append(b, cursor...)
		b = append(b, '"')
	}
	return append(b, '}')
}

func envTailLen(cursor string) int {
	if cursor == "" {
		return 1
	}
	return len(cursorKey) + len(cursor) + 2
}

// rowFrames builds the wanted frames of msgs, the rows of one record, with
// one allocation per shape. s.env holds the envelope's head.
func rowFrames(msgs []hub.Message, rows [][]byte, want [hub.NumShapes]bool, s *scratch) {
	for sh := range hub.NumShapes {
		if !want[sh] {
			continue
		}
		n := 0
		for i, row := range rows {
			c := msgs[i].Cursor
			switch sh {
			case hub.ShapePlain:
				n += wsframe.HeaderLen(len(row)) + len(row)
			case hub.ShapeEnvelope:
				l := len(s.env) + len(row) + envTailLen(c)
				n += wsframe.HeaderLen(l) + l
			case hub.ShapeSSEPlain:
				n += sseframe.Len(c, row)
			case hub.ShapeSSEEnvelope:
				s.tmp = envTail(append(append(s.tmp[:0], s.env...), row...), c)
				n += sseframe.Len(c, s.tmp)
			}
		}
		buf := make([]byte, 0, n)
		for i, row := range rows {
			m := &msgs[i]
			start := len(buf)
			switch sh {
			case hub.ShapePlain:
				buf = wsframe.AppendHeader(buf, wsframe.OpText, len(row))
				buf = append(buf, row...)
			case hub.ShapeEnvelope:
				buf = wsframe.AppendHeader(buf, wsframe.OpText, len(s.env)+len(row)+envTailLen(m.Cursor))
				buf = envTail(append(append(buf, s.env...), row...), m.Cursor)
			case hub.ShapeSSEPlain:
				buf = sseframe.AppendEvent(buf, m.Cursor, row)
			case hub.ShapeSSEEnvelope:
				s.tmp = envTail(append(append(s.tmp[:0], s.env...), row...), m.Cursor)
				buf = sseframe.AppendEvent(buf, m.Cursor, s.tmp)
			}
			m.Frames[sh] = buf[start:len(buf):len(buf)]
		}
	}
}

// Reframe returns m with the frame of shape built again for cursor: a new
// message sharing everything else with m, for a client whose position is
// not m's publish position. It needs m's WebSocket frame of the matching
// shape (plain for the plain shapes, envelope for the envelope ones), as
// built by EncodeAt with a cursor; when m has none, or shape is
// ShapePlain (which carries no cursor), it returns m.
func Reframe(m *hub.Message, shape hub.Shape, cursor string) *hub.Message {
	if shape == hub.ShapePlain {
		return m
	}
	src := hub.ShapeEnvelope
	if shape == hub.ShapeSSEPlain {
		src = hub.ShapePlain
	}
	payload, ok := wsframe.TextPayload(m.Frames[src])
	if !ok {
		return m
	}
	c := &hub.Message{Key: m.Key, Partition: m.Partition, Offset: m.Offset, Row: m.Row, Rows: m.Rows,
		Cursor: cursor, Timestamp: m.Timestamp}
	if shape == hub.ShapeSSEPlain {
		c.Frames[shape] = sseframe.Event(cursor, payload)
		return c
	}
	body := payload
	if m.Cursor != "" {
		cut := len(cursorKey) + len(m.Cursor) + 2
		if len(payload) < cut || !bytes.Equal(payload[len(payload)-cut:len(payload)-cut+len(cursorKey)], []byte(cursorKey)) {
			return m
		}
		body = payload[:len(payload)-cut]
	} else {
		body = payload[:len(payload)-1]
	}
	b := make([]byte, 0, len(body)+len(cursorKey)+len(cursor)+2)
	b = append(b, body...)
	b = append(b, cursorKey...)
	b = append(b, cursor...)
	b = append(b, '"', '}')
	if shape == hub.ShapeEnvelope {
		c.Frames[shape] = wsframe.Text(b)
	} else {
		c.Frames[shape] = sseframe.Event(cursor, b)
	}
	return c
}

// Notices: JSON messages with a "notice" member that tell an envelope or
// SSE client about its stream (records never carry a "notice" member).
// They go only to envelope and SSE clients; plain WebSocket clients get
// producers' values unchanged, and no notices.

// GapNotice is the notice that the records of partition at offsets from
// to to-1 are no longer in Kafka (retention, DeleteRecords) and were
// skipped: {"notice":"gap","partition":0,"from":10,"to":20}.
func GapNotice(partition int32, from, to int64) []byte {
	b := []byte(`{"notice":"gap","partition":`)
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, `,"from":`...)
	b = strconv.AppendInt(b, from, 10)
	b = append(b, `,"to":`...)
	b = strconv.AppendInt(b, to, 10)
	return append(b, '}')
}

// ResetNotice is the notice that the client's cursor no longer applies
// because reason ("topic_recreated": the topic was deleted and created
// again since the cursor was written), and the stream starts again from the
// first record of the topic as it is now:
// {"notice":"reset","reason":"topic_recreated"}.
func ResetNotice(reason string) []byte {
	b := []byte(`{"notice":"reset","reason":`)
	b = appendJSONString(b, reason)
	return append(b, '}')
}

// Notice returns a message carrying the notice json framed for shape, or
// nil for ShapePlain, which gets no notices. SSE notices are events
// without an id, so that the stream's last event id stays the cursor of
// the last record. A notice message has Partition -1 and Rows 0.
func Notice(shape hub.Shape, json []byte) *hub.Message {
	m := &hub.Message{Partition: -1}
	switch shape {
	case hub.ShapeEnvelope:
		m.Frames[shape] = wsframe.Text(json)
	case hub.ShapeSSEPlain, hub.ShapeSSEEnvelope:
		m.Frames[shape] = sseframe.Event("", json)
	default:
		return nil
	}
	return m
}
