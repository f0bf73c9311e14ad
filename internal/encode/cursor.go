package encode

import (
	"bytes"
	"slices"
	"strconv"
	"strings"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/quix"
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
func wantsEnvelope(want [message.NumShapes]bool) bool {
	return want[message.ShapeEnvelope] || want[message.ShapeSSEEnvelope]
}

// single is a record's one message with its Origin, in one allocation.
type single struct {
	m message.Message
	o message.Origin
}

// newMessage returns a message for a record of one message, with room for
// its Origin when it will have one.
func newMessage(withOrigin bool) (*message.Message, *message.Origin) {
	if !withOrigin {
		return new(message.Message), nil
	}
	sm := new(single)
	sm.m.Origin = &sm.o
	return &sm.m, &sm.o
}

// setOrigin fills o with cursor and, if head is set, s.env as the
// envelope's head; the two texts share one allocation.
func setOrigin(o *message.Origin, cursor []byte, head bool, s *scratch) {
	if !head {
		o.Cursor = string(cursor)
		return
	}
	var b strings.Builder
	b.Grow(len(s.env) + len(cursor))
	b.Write(s.env)
	o.Head = b.String()
	b.Write(cursor)
	o.Cursor = b.String()[len(s.env):]
}

// frames builds m's frames for the wanted shapes, with cursor (m's, or
// ""): plain from plain (nil: the value has no plain form), envelope from
// s.env (the envelope's head, and for a value that is not JSON the value
// already) followed by value.
func frames(m *message.Message, cursor string, plain, value []byte, want [message.NumShapes]bool, s *scratch) {
	if plain != nil {
		if want[message.ShapePlain] {
			m.Frames[message.ShapePlain] = wsframe.Text(plain)
		}
		if want[message.ShapeSSEPlain] {
			m.Frames[message.ShapeSSEPlain] = sseframe.Event(cursor, plain)
		}
	}
	if !wantsEnvelope(want) {
		return
	}
	n := len(s.env) + len(value) + envTailLen(cursor)
	fill := func(p []byte) {
		i := copy(p, s.env)
		i += copy(p[i:], value)
		envTail(p[i:i], cursor) // within p: it has the room
	}
	if want[message.ShapeEnvelope] {
		m.Frames[message.ShapeEnvelope] = wsframe.TextFunc(n, fill)
	}
	if want[message.ShapeSSEEnvelope] {
		s.tmp = append(s.tmp[:0], make([]byte, n)...)
		fill(s.tmp)
		m.Frames[message.ShapeSSEEnvelope] = sseframe.Event(cursor, s.tmp)
	}
}

// advanceRows advances pos past msgs, the rows of one record, and returns
// each row's cursor text when the wanted frames carry them (envelope or
// SSE): one string for all, which s.ends cuts, allocated once at about
// its final size (the rows' cursors differ only in the partly delivered
// rows they count, which make them at most 3 characters longer than the
// first row's, up to 2^21 rows). These are the texts Message.Cursor
// computes.
func advanceRows(msgs []message.Message, pos *wsdest.Cursor, want [message.NumShapes]bool, s *scratch) string {
	if !wantsEnvelope(want) && !want[message.ShapeSSEPlain] {
		last := &msgs[len(msgs)-1]
		pos.Advance(last.Partition, last.Offset, last.Row, last.Rows)
		return ""
	}
	var b strings.Builder
	s.ends = slices.Grow(s.ends[:0], len(msgs))
	for i := range msgs {
		m := &msgs[i]
		pos.Advance(m.Partition, m.Offset, m.Row, m.Rows)
		s.cur = pos.AppendText(s.cur[:0])
		if i == 0 {
			b.Grow(len(msgs) * (len(s.cur) + 3))
		}
		b.Write(s.cur)
		s.ends = append(s.ends, b.Len())
	}
	return b.String()
}

// rowCursor returns row i's cursor from the texts advanceRows returned, ""
// when there are none.
func rowCursor(texts string, i int, s *scratch) string {
	if texts == "" {
		return ""
	}
	from := 0
	if i > 0 {
		from = s.ends[i-1]
	}
	return texts[from:s.ends[i]]
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

// rowGap is the room the decoder leaves before each row (quix.Result.Gap):
// a WebSocket frame header for a payload of up to 65,535 bytes, so that
// the plain frames of a record's rows are built where the rows were
// decoded, with no copy.
const rowGap = 4

// rowFrames builds the wanted frames of msgs, the rows of one record (res),
// with the row cursors texts (advanceRows) holds: the plain frames in
// place in the rows' buffer, which res then gives up (quix.Result.Detach),
// unless a row is too long for the gap before it; the others with one
// allocation per shape. s.env holds the envelope's head.
func rowFrames(msgs []message.Message, res *quix.Result, texts string, want [message.NumShapes]bool, s *scratch) {
	inPlace := want[message.ShapePlain]
	for i := range msgs {
		if inPlace && wsframe.HeaderLen(len(res.Row(i))) > res.Gap {
			inPlace = false
		}
	}
	for sh := range message.NumShapes {
		if !want[sh] {
			continue
		}
		if sh == message.ShapePlain && inPlace {
			for i := range msgs {
				p := res.Prefixed(i)
				n := len(p) - res.Gap
				h := res.Gap - wsframe.HeaderLen(n)
				wsframe.AppendHeader(p[h:h], wsframe.OpText, n) // within the gap
				msgs[i].Frames[sh] = p[h:]
			}
			continue
		}
		n := 0
		for i := range msgs {
			row, c := res.Row(i), rowCursor(texts, i, s)
			switch sh {
			case message.ShapePlain:
				n += wsframe.HeaderLen(len(row)) + len(row)
			case message.ShapeEnvelope:
				l := len(s.env) + len(row) + envTailLen(c)
				n += wsframe.HeaderLen(l) + l
			case message.ShapeSSEPlain:
				n += sseframe.Len(c, row)
			case message.ShapeSSEEnvelope:
				s.tmp = envTail(append(append(s.tmp[:0], s.env...), row...), c)
				n += sseframe.Len(c, s.tmp)
			}
		}
		buf := make([]byte, 0, n)
		for i := range msgs {
			m := &msgs[i]
			row, c := res.Row(i), rowCursor(texts, i, s)
			start := len(buf)
			switch sh {
			case message.ShapePlain:
				buf = wsframe.AppendHeader(buf, wsframe.OpText, len(row))
				buf = append(buf, row...)
			case message.ShapeEnvelope:
				buf = wsframe.AppendHeader(buf, wsframe.OpText, len(s.env)+len(row)+envTailLen(c))
				buf = envTail(append(append(buf, s.env...), row...), c)
			case message.ShapeSSEPlain:
				buf = sseframe.AppendEvent(buf, c, row)
			case message.ShapeSSEEnvelope:
				s.tmp = envTail(append(append(s.tmp[:0], s.env...), row...), c)
				buf = sseframe.AppendEvent(buf, c, s.tmp)
			}
			m.Frames[sh] = buf[start:len(buf):len(buf)]
		}
	}
	if inPlace {
		res.Detach()
	}
}

// Reframe returns m with the frame of shape built again for cursor: a new
// message sharing everything else with m, for a client whose position is
// not m's publish position, or for a shape m was built without. The plain
// SSE frame is built from m's plain WebSocket frame; the envelope frames
// from m's envelope frame as built by EncodeAt with a cursor, or, for a
// message built by EncodeKept without one, from its head and plain frame:
// either way byte for byte what EncodeAt would have built with cursor.
// When m has neither (see Deliverable), or shape is ShapePlain (which
// carries no cursor), it returns m.
func Reframe(m *message.Message, shape message.Shape, cursor string) *message.Message {
	var b []byte // the new frame's JSON
	switch shape {
	case message.ShapePlain:
		return m
	case message.ShapeSSEPlain:
		payload, ok := wsframe.TextPayload(m.Frames[message.ShapePlain])
		if !ok {
			return m
		}
		b = payload
	default:
		head, rest, ok := envelopeBody(m)
		if !ok {
			return m
		}
		b = make([]byte, 0, len(head)+len(rest)+envTailLen(cursor))
		b = envTail(append(append(b, head...), rest...), cursor)
	}
	c, o := newMessage(true)
	c.Key, c.Partition, c.Offset, c.Row, c.Rows, c.Timestamp = m.Key, m.Partition, m.Offset, m.Row, m.Rows, m.Timestamp
	o.Cursor = cursor
	if shape == message.ShapeEnvelope {
		c.Frames[shape] = wsframe.Text(b)
	} else {
		c.Frames[shape] = sseframe.Event(cursor, b)
	}
	return c
}

// envelopeBody returns m's envelope without its tail (the cursor member
// and the closing brace) in two pieces, head then rest: from m's envelope
// frame (head ""), else from its head and plain frame.
func envelopeBody(m *message.Message) (head string, rest []byte, ok bool) {
	payload, ok := wsframe.TextPayload(m.Frames[message.ShapeEnvelope])
	if !ok {
		payload, ok = sseData(m.Frames[message.ShapeSSEEnvelope])
	}
	if ok {
		cursor := m.Cursor()
		cut := envTailLen(cursor)
		if len(payload) < cut || cursor != "" && !bytes.Equal(payload[len(payload)-cut:len(payload)-cut+len(cursorKey)], []byte(cursorKey)) {
			return "", nil, false
		}
		return "", payload[:len(payload)-cut], true
	}
	if m.Head() == "" {
		return "", nil, false
	}
	plain, ok := wsframe.TextPayload(m.Frames[message.ShapePlain])
	return m.Head(), plain, ok
}

// sseData returns the data of an SSE event of one data line (the
// encoder's envelope events), false for anything else.
func sseData(event []byte) ([]byte, bool) {
	if bytes.HasPrefix(event, []byte("id: ")) {
		_, event, _ = bytes.Cut(event, []byte("\n"))
	}
	data, ok := bytes.CutPrefix(event, []byte("data: "))
	if !ok || !bytes.HasSuffix(data, []byte("\n\n")) {
		return nil, false
	}
	data = data[:len(data)-2]
	if bytes.IndexByte(data, '\n') >= 0 {
		return nil, false
	}
	return data, true
}

// Deliverable reports whether m has a frame of shape or Reframe can build
// one for it.
func Deliverable(m *message.Message, shape message.Shape) bool {
	if m.Frames[shape] != nil {
		return true
	}
	switch shape {
	case message.ShapeSSEPlain:
		return m.Frames[message.ShapePlain] != nil
	case message.ShapeEnvelope, message.ShapeSSEEnvelope:
		_, _, ok := envelopeBody(m)
		return ok
	}
	return false
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

// UnavailableNotice is the notice that the stream's data cannot be read
// for reason (a ready.Reason: "broker_unreachable", "topic_missing"); the
// stream goes on by itself once it can:
// {"notice":"unavailable","reason":"broker_unreachable"}.
func UnavailableNotice(reason string) []byte {
	b := []byte(`{"notice":"unavailable","reason":`)
	b = appendJSONString(b, reason)
	return append(b, '}')
}

// AvailableNotice is the notice that the data is flowing again after an
// unavailable notice: {"notice":"available"}.
func AvailableNotice() []byte { return []byte(`{"notice":"available"}`) }

// ConflatedNotice is the notice that the client fell behind and gets, for
// each key, only the latest message until it catches up:
// {"notice":"conflated"}.
func ConflatedNotice() []byte { return []byte(`{"notice":"conflated"}`) }

// CaughtUpNotice is the notice that a conflated client has caught up and
// gets every message again: {"notice":"caught_up"}.
func CaughtUpNotice() []byte { return []byte(`{"notice":"caught_up"}`) }

// NoticeAll returns one message carrying the notice json for every shape
// that gets notices (not ShapePlain): its envelope frame and its SSE
// events, built once and shared by every client. It serves a notice
// published in the stream (Hub.Publish gives it to every client with a
// frame for it) and a standing one (Hub.Announce). Like Notice's, it has
// Partition -1 and Rows 0.
func NoticeAll(json []byte) *message.Message {
	m := &message.Message{Partition: -1}
	m.Frames[message.ShapeEnvelope] = wsframe.Text(json)
	ev := sseframe.Event("", json)
	m.Frames[message.ShapeSSEPlain] = ev
	m.Frames[message.ShapeSSEEnvelope] = ev
	return m
}

// Notice returns a message carrying the notice json framed for shape, or
// nil for ShapePlain, which gets no notices. SSE notices are events
// without an id, so that the stream's last event id stays the cursor of
// the last record. A notice message has Partition -1 and Rows 0.
func Notice(shape message.Shape, json []byte) *message.Message {
	m := &message.Message{Partition: -1}
	switch shape {
	case message.ShapeEnvelope:
		m.Frames[shape] = wsframe.Text(json)
	case message.ShapeSSEPlain, message.ShapeSSEEnvelope:
		m.Frames[shape] = sseframe.Event("", json)
	default:
		return nil
	}
	return m
}
